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
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import inprocess, over_http, profiling, report, results, scaling
from .apps import APPS, APPS_BY_KEY, ENDPOINTS, ENDPOINTS_BY_KEY, AppSpec, Endpoint


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


def _print_section(section: str) -> None:
    stored = results.load()
    print(report.text({section: stored[section]} if section in stored else {}))


def cmd_inprocess(args: argparse.Namespace) -> int:
    _log("in-process: each app called as a WSGI callable")
    data = inprocess.run(
        _choose_apps(args.apps),
        _choose_endpoints(args.endpoints),
        reps=args.reps,
        batch_seconds=args.batch_ms / 1000,
        log=_log,
    )
    results.save("inprocess", data)
    _print_section("inprocess")
    return 0


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
    results.save("http", data)
    _print_section("http")
    return 0


def cmd_scaling(args: argparse.Namespace) -> int:
    _log("scaling: route-table size, discovery, memory")
    results.save("scaling", scaling.run(reps=args.reps, batch=args.batch, log=_log))
    _print_section("scaling")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    stored = results.load()
    if not stored:
        print(f"error: no results in {results.RESULTS}; run a benchmark first", file=sys.stderr)
        return 1
    report.BENCHMARKS_MD.write_text(report.markdown(stored))
    _log(f"wrote {report.BENCHMARKS_MD}")
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    started = time.monotonic()
    status = 0
    steps = (("inprocess", cmd_inprocess), ("http", cmd_http), ("scaling", cmd_scaling))
    for name, command in steps:
        code = command(_defaults(name))
        if code:
            status = code
            _log(f"{name} failed; carrying on with the rest")
        print()
    print(report.targets_text(results.load()))
    cmd_report(args)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="microroute against its peers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    apps_help = f"comma-separated apps (default: all): {', '.join(APPS_BY_KEY)}"
    endpoints_help = f"comma-separated endpoints: {', '.join(ENDPOINTS_BY_KEY)}"

    p = commands.add_parser("inprocess", help="each app as a WSGI callable (~40 s)")
    p.add_argument("--apps", help=apps_help)
    p.add_argument("--endpoints", help=endpoints_help + " (default: all)")
    p.add_argument("--reps", type=int, default=100, help="interleaved rounds (default: 100)")
    p.add_argument("--batch-ms", type=float, default=10, help="ms per batch (default: 10)")
    p.set_defaults(func=cmd_inprocess)

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

    p = commands.add_parser("scaling", help="route-table size, discovery, memory (~20 s)")
    p.add_argument("--reps", type=int, default=15, help="interleaved rounds (default: 15)")
    p.add_argument("--batch", type=int, default=2000, help="requests per batch (default: 2000)")
    p.set_defaults(func=cmd_scaling)

    p = commands.add_parser("all", help="inprocess, http and scaling, then BENCHMARKS.md")
    p.set_defaults(func=cmd_all)

    p = commands.add_parser("report", help="write BENCHMARKS.md from the stored results")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("profile", help="cProfile one app's requests, per function")
    p.add_argument("--app", default="microroute", help="comma-separated " + apps_help)
    p.add_argument("--endpoint", default=None, help=endpoints_help + " (default: all)")
    p.add_argument("-n", "--requests", type=int, default=20_000, help="(default: 20000)")
    p.add_argument("--top", type=int, default=25, help="functions shown (default: 25)")
    p.set_defaults(func=cmd_profile)
    return parser


def _defaults(command: str) -> argparse.Namespace:
    """The parsed default options of one subcommand (for ``all``)."""
    return _parser().parse_args([command])


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
