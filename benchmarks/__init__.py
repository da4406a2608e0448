"""Reproducible benchmarks of microroute against its peers (``python -m benchmarks``).

See ``benchmarks/README.md`` for the commands, and ``BENCHMARKS.md`` at the
repository root for the latest results.
"""
