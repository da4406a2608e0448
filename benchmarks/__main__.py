"""``python -m benchmarks``: microroute against its peers, in-process and over HTTP.

::

    python -m benchmarks inprocess   # each app as a WSGI callable (~40 s)
    python -m benchmarks http        # gunicorn -k gevent and microroute run, loaded by wrk (~3 min)
    python -m benchmarks scaling     # 10..10,000 routes, discovery, memory (~20 s)
    python -m benchmarks all         # the three, then BENCHMARKS.md
    python -m benchmarks report      # BENCHMARKS.md again from benchmarks/results/latest.json
    python -m benchmarks profile --app microroute --endpoint hello

Each command prints its tables and stores its results in
``benchmarks/results/latest.json``.

``--smoke`` runs a command at the tiniest size it has (:data:`SMOKE`), to prove it
still works: every app answers, every server starts, every table prints. Its
figures mean nothing; it stores them in ``benchmarks/results/smoke.json`` (and
``all --smoke`` writes ``benchmarks/results/smoke.md``), never over a real run's,
and it exits non-zero if anything it should have measured could not be.
CI runs every command so (``tests/test_benchmarks_smoke.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import inprocess, over_http, profiling, report, results, scaling
from .apps import APPS, APPS_BY_KEY, ENDPOINTS, ENDPOINTS_BY_KEY, AppSpec, Endpoint

#: Each command's options under ``--smoke``: one round of everything, one server
#: (``python -m benchmarks.servers --smoke`` starts the other three). An option
#: given on the command line still wins.
SMOKE: dict[str, dict[str, Any]] = {
    "inprocess": {"reps": 1, "batch_ms": 1.0},
    "http": {
        "apps": "microroute",
        "endpoints": "hello,echo",
        "servers": "microroute",
        "rounds": 1,
        "seconds": 1,
        "warmup": 0,
        "connections": 4,
    },
    "scaling": {"reps": 1, "batch": 10},
    "all": {},
    "report": {},
    "profile": {"endpoint": "hello,echo", "requests": 300, "top": 5},
}
SMOKE_MD = results.SMOKE_RESULTS.with_suffix(".md")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _choose_apps(keys: str | None) -> list[AppSpec]:
    if not keys:
        return list(APPS)
    chosen = [k.strip() for k in keys.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in APPS_BY_KEY]
    if unknown:
        raise SystemExit(f"unknown app {', '.join(unknown)}; choose from {', '.join(APPS_BY_KEY)}")
    if "raw" not in chosen:
        chosen.insert(0, "raw")  # every ratio needs it
    return [APPS_BY_KEY[k] for k in chosen]


def _choose_endpoints(keys: str | None) -> list[Endpoint]:
    if not keys:
        return list(ENDPOINTS)
    chosen = [k.strip() for k in keys.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in ENDPOINTS_BY_KEY]
    if unknown:
        raise SystemExit(
            f"unknown endpoint {', '.join(unknown)}; choose from {', '.join(ENDPOINTS_BY_KEY)}"
        )
    return [ENDPOINTS_BY_KEY[k] for k in chosen]


def _print_section(section: str, path: Path) -> None:
    stored = results.load(path)
    print(report.text({section: stored[section]} if section in stored else {}))


def _unmeasured(args: argparse.Namespace, data: dict[str, Any]) -> int:
    """A smoke run fails when anything was skipped; a real run lists it and carries on."""
    if args.smoke and data["errors"]:
        for key, problem in data["errors"].items():
            _log(f"smoke run failed: {key}: {problem}")
        return 1
    return 0


def cmd_inprocess(args: argparse.Namespace) -> int:
    _log("in-process: each app called as a WSGI callable")
    data = inprocess.run(
        _choose_apps(args.apps),
        _choose_endpoints(args.endpoints),
        reps=args.reps,
        batch_seconds=args.batch_ms / 1000,
        log=_log,
    )
    results.save("inprocess", data, args.results)
    _print_section("inprocess", args.results)
    return _unmeasured(args, data)


def cmd_http(args: argparse.Namespace) -> int:
    _log("over HTTP: real servers on 127.0.0.1, loaded by wrk")
    servers = list(over_http.SERVERS)
    if args.servers:
        wanted = {over_http.SERVER_KEYS.get(s.strip(), s.strip()) for s in args.servers.split(",")}
        servers = [s for s in servers if s in wanted]
    try:
        data = over_http.run(
            _choose_apps(args.apps),
            _choose_endpoints(args.endpoints or "hello"),
            servers=servers,
            rounds=args.rounds,
            seconds=args.seconds,
            warmup=args.warmup,
            connections=args.connections,
            log=_log,
        )
    except over_http.WrkMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results.save("http", data, args.results)
    _print_section("http", args.results)
    return _unmeasured(args, data)


def cmd_scaling(args: argparse.Namespace) -> int:
    _log("scaling: route-table size, discovery, memory")
    sizes = scaling.SMOKE if args.smoke else scaling.FULL
    data = scaling.run(reps=args.reps, batch=args.batch, log=_log, sizes=sizes)
    results.save("scaling", data, args.results)
    _print_section("scaling", args.results)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    stored = results.load(args.results)
    if not stored:
        print(f"error: no results in {args.results}; run a benchmark first", file=sys.stderr)
        return 1
    args.output.write_text(report.markdown(stored))
    _log(f"wrote {args.output}")
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    started = time.monotonic()
    status = 0
    steps = (("inprocess", cmd_inprocess), ("http", cmd_http), ("scaling", cmd_scaling))
    for name, command in steps:
        code = command(_defaults(name, args))
        if code:
            status = code
            _log(f"{name} failed; carrying on with the rest")
        print()
    print(report.targets_text(results.load(args.results)))
    status = cmd_report(args) or status
    _log(f"all done in {time.monotonic() - started:.0f} s")
    return status


def cmd_profile(args: argparse.Namespace) -> int:
    keys = [k.strip() for k in args.app.split(",")]
    for key in keys:
        spec = APPS_BY_KEY.get(key)
        if spec is None:
            raise SystemExit(f"unknown app {key}; choose from {', '.join(APPS_BY_KEY)}")
        for endpoint in _choose_endpoints(args.endpoint):
            data = profiling.profile(spec, endpoint, args.requests)
            print(
                f"{spec.label}, {endpoint.label}: {data['unprofiled_us']:.2f} us/request"
                f" unprofiled (harness loop alone {data['harness_floor_us']:.2f}),"
                f" {data['profiled_us']:.2f} under cProfile"
            )
            print(profiling.table(data, top=args.top))
            print()
    return 0


def _parser(smoke: bool = False) -> argparse.ArgumentParser:
    """The command line; with *smoke*, each command's defaults are its :data:`SMOKE` ones."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="microroute against its peers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    smoke_help = (
        "the tiniest run, to prove the command works (CI runs it): its figures mean"
        " nothing, go to benchmarks/results/smoke.json, and anything not measured fails it"
    )
    apps_help = f"comma-separated apps (default: all): {', '.join(APPS_BY_KEY)}"
    endpoints_help = f"comma-separated endpoints: {', '.join(ENDPOINTS_BY_KEY)}"

    p = commands.add_parser("inprocess", help="each app as a WSGI callable (~40 s)")
    p.add_argument("--apps", help=apps_help)
    p.add_argument("--endpoints", help=endpoints_help + " (default: all)")
    p.add_argument("--reps", type=int, default=100, help="interleaved rounds (default: 100)")
    p.add_argument("--batch-ms", type=float, default=10, help="ms per batch (default: 10)")
    p.set_defaults(func=cmd_inprocess)
    stored = [p]

    p = commands.add_parser("http", help="real servers loaded by wrk (~3 min)")
    p.add_argument("--apps", help=apps_help)
    p.add_argument("--endpoints", help=endpoints_help + " (default: hello)")
    p.add_argument(
        "--servers",
        help="comma-separated: pywsgi, microroute, gunicorn, worker (default: all four)",
    )
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default: 7)")
    p.add_argument("--seconds", type=int, default=1, help="s per wrk run (default: 1)")
    p.add_argument("--warmup", type=int, default=1, help="s of warm-up, once (default: 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk -c (default: 32)")
    p.set_defaults(func=cmd_http)
    stored.append(p)

    p = commands.add_parser("scaling", help="route-table size, discovery, memory (~20 s)")
    p.add_argument("--reps", type=int, default=15, help="interleaved rounds (default: 15)")
    p.add_argument("--batch", type=int, default=2000, help="requests per batch (default: 2000)")
    p.set_defaults(func=cmd_scaling)
    stored.append(p)

    p = commands.add_parser("all", help="inprocess, http and scaling, then BENCHMARKS.md")
    p.set_defaults(func=cmd_all)
    stored.append(p)
    reported = [p]

    p = commands.add_parser("report", help="write BENCHMARKS.md from the stored results")
    p.set_defaults(func=cmd_report)
    stored.append(p)
    reported.append(p)

    p = commands.add_parser("profile", help="cProfile one app's requests, per function")
    p.add_argument("--app", default="microroute", help="comma-separated " + apps_help)
    p.add_argument("--endpoint", default=None, help=endpoints_help + " (default: all)")
    p.add_argument("-n", "--requests", type=int, default=20_000, help="(default: 20000)")
    p.add_argument("--top", type=int, default=25, help="functions shown (default: 25)")
    p.set_defaults(func=cmd_profile)

    for p in stored:
        p.add_argument(
            "--results",
            type=Path,
            default=results.SMOKE_RESULTS if smoke else results.RESULTS,
            help="the results file (default: benchmarks/results/latest.json;"
            " with --smoke, benchmarks/results/smoke.json)",
        )
    for p in reported:
        p.add_argument(
            "--output",
            type=Path,
            default=SMOKE_MD if smoke else report.BENCHMARKS_MD,
            help="the markdown report (default: BENCHMARKS.md at the repository root;"
            " with --smoke, benchmarks/results/smoke.md)",
        )
    for name, p in commands.choices.items():
        p.add_argument("--smoke", action="store_true", help=smoke_help)
        if smoke:
            p.set_defaults(**SMOKE[name])
    return parser


def _defaults(command: str, parent: argparse.Namespace) -> argparse.Namespace:
    """The default options of one subcommand, as ``all`` (*parent*) runs it."""
    argv = [command, "--results", str(parent.results)]
    if parent.smoke:
        argv.append("--smoke")
    return _parser(parent.smoke).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = _parser().parse_args(argv)
    if args.smoke:  # parse again, now with each command's smoke defaults
        args = _parser(smoke=True).parse_args(argv)
        _log(f"{args.command} --smoke: the tiniest run; no figure below means anything")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
