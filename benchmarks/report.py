"""Turn ``results/latest.json`` into tables: on stdout, and as ``BENCHMARKS.md``.

``python -m benchmarks report`` rewrites ``BENCHMARKS.md`` at the repository root
from whatever the last runs stored. Notes written by hand (what the profile
shows, what was tried) go in ``benchmarks/notes.md``, which is copied in, so
regenerating never loses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import inprocess, over_http, scaling
from .apps import ENDPOINTS_BY_KEY
from .stats import MICRO, TIMES, render

__all__ = ["TARGETS_NOTE", "markdown", "targets", "targets_text", "text"]

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
NOTES = Path(__file__).parent / "notes.md"

TARGETS_NOTE = (
    "Baseline on this machine when issue 7 was filed (in-process, /hello, "
    f"{MICRO} per request): raw WSGI 2.4, Falcon 7.3, Bottle 11.9, plain werkzeug 21.8, "
    f"Flask 43.7. Over HTTP (wrk, gevent pywsgi, /hello): Falcon 0.92{TIMES} raw WSGI, "
    f"plain werkzeug 0.57{TIMES}, Flask 0.56{TIMES}."
)

ECHO = ENDPOINTS_BY_KEY["echo"]

Check = tuple[str, str, str]  # target, measured, verdict


def _verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def _inprocess_targets(data: dict[str, Any] | None) -> list[Check]:
    goals = [("hello", 1.0), ("users", 1.0), ("echo", 0.9)]
    checks: list[Check] = []
    for endpoint, goal in goals:
        target = f"in-process {endpoint}: microroute (cache off) >= {goal:.1f}{TIMES} Falcon"
        entry = (data or {}).get("results", {}).get(endpoint, {}).get("microroute")
        speed = entry["speed_vs"].get("falcon") if entry else None
        if speed is None:
            checks.append((target, "not measured", "-"))
        else:
            checks.append((target, f"{speed:.2f}{TIMES}", _verdict(speed >= goal)))
    target = f"in-process hello: cache HIT >= 0.8{TIMES} raw WSGI"
    entry = (data or {}).get("results", {}).get("hello", {}).get("microroute-cached")
    if entry is None:
        checks.append((target, "not measured", "-"))
    elif entry.get("cache") != "HIT":
        checks.append((target, "no cache HIT seen (X-Microroute-Cache)", "MISS"))
    else:
        speed = entry["speed_vs"]["raw"]
        checks.append((target, f"{speed:.2f}{TIMES}", _verdict(speed >= 0.8)))
    return checks


def _http_targets(data: dict[str, Any] | None) -> list[Check]:
    checks: list[Check] = []
    for server in over_http.SERVERS:
        target = f"HTTP hello on `{server}`: microroute >= 0.95{TIMES} raw WSGI"
        entry = (data or {}).get("results", {}).get(server, {}).get("hello", {})
        speed = entry.get("microroute", {}).get("vs_raw")
        if speed is None:
            checks.append((target, "not measured", "-"))
        else:
            checks.append((target, f"{speed:.2f}{TIMES}", _verdict(speed >= 0.95)))
    return checks


def _scaling_targets(data: dict[str, Any] | None) -> list[Check]:
    target = f"10,000 routes match within 1.5{TIMES} of 10 routes"
    if not data:
        return [(target, "not measured", "-"), ("discovery of 1,000 route files < 1 s", "-", "-")]
    # A smoke run measures neither 10,000 routes nor 1,000 files.
    match = data["match"]["results"]
    if all("10000" in by_size for by_size in match.values()):
        worst_name, worst = max(
            ((name, by_size["10000"]["vs_smallest"]) for name, by_size in match.items()),
            key=lambda item: item[1],
        )
        checks = [(target, f"{worst:.2f}{TIMES} (worst: {worst_name})", _verdict(worst <= 1.5))]
    else:
        checks = [(target, "not measured", "-")]
    discovered = data["discovery"]["results"].get("1000")
    if discovered is None:
        checks.append(("discovery of 1,000 route files < 1 s", "not measured", "-"))
    else:
        seconds = discovered["cold_seconds"]
        checks.append(
            ("discovery of 1,000 route files < 1 s", f"{seconds:.2f} s", _verdict(seconds < 1.0))
        )
    return checks


def targets(results: dict[str, Any]) -> list[Check]:
    return [
        *_inprocess_targets(results.get("inprocess")),
        *_http_targets(results.get("http")),
        *_scaling_targets(results.get("scaling")),
    ]


def _sections(results: dict[str, Any], md: bool) -> list[tuple[str, str]]:
    """(title, table) for everything measured, in reading order."""
    out: list[tuple[str, str]] = []
    data = results.get("inprocess")
    if data:
        for key, label in data["endpoints"].items():
            out.append((f"In-process, {label}", inprocess.table(data, key, md)))
    data = results.get("http")
    if data:
        for server in data["results"]:
            for key, label in data["endpoints"].items():
                table = over_http.table(data, server, key, md)
                out.append((f"Over HTTP, `{server}`, {label}", table))
    data = results.get("scaling")
    if data:
        out.extend(scaling.tables(data, md))
    return out


def targets_text(results: dict[str, Any]) -> str:
    """The targets *results* measure, as a terminal table."""
    measured = [c for c in targets(results) if c[2] != "-"]
    return "Targets (issue 7)\n" + render(["target", "measured", "verdict"], measured)


def text(results: dict[str, Any]) -> str:
    """Everything in *results* as terminal tables, its targets last."""
    parts = [f"{title}\n{table}" for title, table in _sections(results, False)]
    return "\n\n".join([*parts, targets_text(results)])


def _machine(results: dict[str, Any]) -> str:
    sections = [s for s in ("inprocess", "http", "scaling") if s in results]
    if not sections:
        return "No results yet."
    first = results[sections[0]]
    m = first["machine"]
    packages = ", ".join(f"{name} {v}" for name, v in m["packages"].items() if v)
    lines = [
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['os']}",
        f"- {m['python']}; {packages}",
        f"- wrk: {m['wrk'] or 'not installed'}",
    ]
    for section in sections:
        data = results[section]
        load = ", ".join(map(str, data["machine"]["load_average"]))
        lines.append(f"- `{section}` ran {data['when']} (load average at start: {load})")
    return "\n".join(lines)


def _settings(results: dict[str, Any]) -> str:
    lines = []
    if "inprocess" in results:
        s = results["inprocess"]["settings"]
        lines.append(
            f"- in-process: {s['reps']} interleaved rounds, batches of ~"
            f"{s['batch_seconds'] * 1000:.0f} ms per app and endpoint; median round"
        )
    if "http" in results:
        s = results["http"]["settings"]
        lines.append(
            f"- HTTP: `wrk -t{s['wrk_threads']} -c{s['connections']} -d{s['seconds']}s`,"
            f" {s['rounds']} interleaved rounds after a {s['warmup']} s warm-up; median round"
        )
    if "scaling" in results:
        s = results["scaling"]["match"]
        bytecode = (
            ""
            if results["scaling"]["discovery"]["writes_bytecode"]
            else ("; run with PYTHONDONTWRITEBYTECODE, so every scan compiles every file")
        )
        lines.append(
            f"- scaling: {s['reps']} interleaved rounds of {s['batch']} requests;"
            f" discovery median of {results['scaling']['discovery']['reps']}{bytecode}"
        )
    return "\n".join(lines)


def _errors(results: dict[str, Any]) -> str:
    lines = []
    for section in ("inprocess", "http"):
        for key, problem in (results.get(section) or {}).get("errors", {}).items():
            lines.append(f"- {section}, {key}: {problem}")
    for section, problem in results.get("failed", {}).items():
        lines.append(f"- {section} did not run: {problem}")
    return "\n".join(lines)


_HOW = f"""\
Every app serves the same three endpoints with the same bytes (`benchmarks/apps/`,
checked by `tests/test_benchmark_apps.py`): `GET /hello`, `GET /users/42` and
`POST /echo` with a {{echo_size}}-byte JSON object. JSON is compact and UTF-8 everywhere:
Falcon and Bottle get `partial(json.dumps, ensure_ascii=False, separators=(",", ":"))`
(Falcon's default handler minus the spaces), Flask `sort_keys = False` and
`ensure_ascii = False` (it still adds a trailing newline). The raw WSGI app
encodes `/hello` once and the other two per request.

Ratios are speed ratios: `1.20{TIMES}` is 1.2 times the requests per second of the
reference (in-process: its {MICRO} divided by this app's). In-process figures
include the harness loop (copying the environ, iterating and closing the body),
which is most of the raw WSGI row. The machine is shared and noisy: compare
rows of one run, not runs."""


def markdown(results: dict[str, Any]) -> str:
    parts = [
        "# Benchmarks",
        "Generated by `python -m benchmarks report` from `benchmarks/results/latest.json`;"
        " do not edit by hand (notes go in `benchmarks/notes.md`).",
        "## Reproduce",
        "```sh\n"
        "pip install -e . -r benchmarks/requirements.txt   # the peers, never runtime deps\n"
        "sudo apt-get install wrk                          # for `http` only\n"
        "python -m benchmarks all      # inprocess + http + scaling, then this file\n"
        "python -m benchmarks inprocess | http | scaling | report\n"
        "python -m benchmarks profile --app microroute --endpoint hello\n"
        "```",
        "## Machine",
        _machine(results),
        _settings(results),
        "## Targets (issue 7)",
        render(["target", "measured", "verdict"], targets(results), markdown=True),
        TARGETS_NOTE,
    ]
    if NOTES.exists():
        parts += ["## Notes", NOTES.read_text().strip()]
    parts += ["## How it is measured", _HOW.replace("{echo_size}", str(len(ECHO.body)))]
    for title, table in _sections(results, True):
        parts += [f"### {title}", table]
    errors = _errors(results)
    if errors:
        parts += ["## Errors", errors]
    return "\n\n".join(parts) + "\n"
