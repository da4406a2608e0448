"""Small statistics for noisy machines: medians and quartiles, ratios, tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["MICRO", "TIMES", "quartiles", "ratio", "render", "summary"]

MICRO = "\u00b5s"  # "µs", spelled so linters do not take it for a Greek mu
TIMES = "\u00d7"  # the multiplication sign


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(p25, median, p75) of *samples*."""
    if len(samples) < 2:
        value = samples[0]
        return value, value, value
    p25, p50, p75 = statistics.quantiles(samples, n=4, method="inclusive")
    return p25, p50, p75


def summary(samples: Sequence[float]) -> dict[str, float]:
    p25, median, p75 = quartiles(samples)
    return {
        "median": median,
        "p25": p25,
        "p75": p75,
        "min": min(samples),
        "n": len(samples),
    }


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}{TIMES}"


def render(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """A table: aligned columns for a terminal, or GitHub markdown.

    The first column is left-aligned, the others right-aligned (numbers).
    """
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
