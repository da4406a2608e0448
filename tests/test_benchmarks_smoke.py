"""Every benchmark in ``benchmarks/`` runs here at its tiniest size, so none can stop unnoticed.

``benchmarks/sse_streams.py`` could not start once typed handlers landed, and
nobody knew: no test ran it. Here every entry point runs as a real subprocess
with ``--smoke`` (a few rounds, a few clients, one second of load): it must exit
0, which a smoke run does only when everything it should measure was measured,
print its tables, and leave no process behind. No figure is asserted: on a
shared 2-core machine, figures from runs this small mean nothing.

A new script in ``benchmarks/`` fails :func:`test_every_entry_point_has_a_smoke_run`
until it has a row in :data:`SMOKES`. The peers come from
``benchmarks/requirements*.txt`` and ``wrk`` and ``hey`` from Debian, all installed
by ``.ci/run``; a missing one fails here rather than skipping.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
TIMEOUT = 180.0  # per run; the slowest takes ~30 s


@dataclass(frozen=True)
class Smoke:
    """One smoke run: the command, and what it must print."""

    id: str
    entry: str  # the entry point: "python -m benchmarks <command>" or a file's path
    argv: tuple[str, ...]  # after `python`; "{tmp}" is this module's temporary folder
    shows: tuple[str, ...] = ()  # regular expressions its stdout must match (re.M)
    writes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (file in {tmp}, its expressions)
    needs: tuple[str, ...] = ()  # programs on PATH
    after: tuple[str, ...] = ()  # runs whose results it reads
    also_runs: tuple[str, ...] = ()  # entry points it starts, proven by its output


def _module(*argv: str) -> tuple[str, ...]:
    return ("-m", *argv)


INPROCESS_SECTIONS = (
    r"^In-process, GET /hello$",
    r"^In-process, GET /users/42$",
    r"^In-process, POST /echo$",
)
APP_ROWS = tuple(
    rf"^{re.escape(label)}( \[\w+\])?\s+\d+\.\d\d\s"
    for label in (
        "raw WSGI",
        "plain werkzeug",
        "Flask",
        "Falcon",
        "Bottle",
        "microroute (decorators)",
        "microroute (discovered)",
        "microroute (cache on)",
    )
)
HTTP_SECTIONS = (
    r"^Over HTTP, `microroute run`, GET /hello$",
    r"^Over HTTP, `microroute run`, POST /echo$",
    r"^microroute \(decorators\)\s+[\d,]+\s",
)
SCALING_SECTIONS = (
    r"^Match cost, µs per matched request$",
    r"^last catchall\s+\d",
    r"^Discovery, App\(app_dir=\.\.\.\)$",
    r"^Memory, Router \+ App \(tracemalloc\)$",
)
REPORT_SECTIONS = (
    r"^## Targets \(issue 7\)$",
    r"^### In-process, GET /hello$",
    r"^### Over HTTP, `microroute run`, POST /echo$",
    r"^### Match cost, µs per matched request$",
    r"^### Memory, Router \+ App \(tracemalloc\)$",
)
RESULTS = ("--results", "{tmp}/results.json")
SERVERS = (
    "pywsgi (tuned)",
    "microroute run",
    "gunicorn -k gevent -w 1",
    "gunicorn -k microroute.gunicorn.Worker -w 1",
)
# A server's row: req/s for raw and microroute (Falcon is not run), then two p99s.
SERVERS_ROW = r"^\| {server} \| [\d,]+ \| - \| [\d,]+ \|.* [\d.]+ ms \| [\d.]+ ms \|$"
# A peer's row, in the requests/s table and then the CPU table: /hello with its ratio.
PEERS = (
    "microroute (decorators) · microroute run",
    "raw WSGI · microroute run",
    "microroute (decorators) · granian --interface wsgi",
    "raw WSGI · granian --interface wsgi",
    "Starlette (async) · uvicorn (httptools, uvloop)",
    "FastAPI (async def) · uvicorn (httptools, uvloop)",
    "FastAPI (def) · uvicorn (httptools, uvloop)",
)
PEER_ROW = (
    r"^\| {peer} \| [\d,]+ \([\d.]+\u00d7\) \|$"  # req/s
    r"(?s:.*)^\| {peer} \| [\d.]+ \([\d.]+\u00d7\) \|$"  # µs of CPU
)
# A row of --baseline's table: /hello's req/s, the baseline's and their ratio, then CPU's.
BASELINE_ROW = (
    r"^\| {app} · {server} \| /hello \| [\d,]+ \| [\d,]+ \| [\d.]+\u00d7"
    r" \| [\d.]+ \| [\d.]+ \| [\d.]+\u00d7 \|$"
)
# Each SSE row: the app's name, then `held/clients`, then the figures.
SSE_ROW = r"^{server}\s+{app}\s+\d+/3\s"

SMOKES: list[Smoke] = [
    Smoke(
        "inprocess",
        "python -m benchmarks inprocess",
        _module("benchmarks", "inprocess", "--smoke", *RESULTS),
        shows=INPROCESS_SECTIONS + APP_ROWS,
    ),
    Smoke(
        "http",
        "python -m benchmarks http",
        _module("benchmarks", "http", "--smoke", *RESULTS),
        shows=HTTP_SECTIONS,
        needs=("wrk",),
    ),
    Smoke(
        "scaling",
        "python -m benchmarks scaling",
        _module("benchmarks", "scaling", "--smoke", *RESULTS),
        shows=SCALING_SECTIONS,
    ),
    Smoke(
        "report",
        "python -m benchmarks report",
        _module("benchmarks", "report", *RESULTS, "--output", "{tmp}/report.md"),
        writes=(("report.md", REPORT_SECTIONS),),
        after=("inprocess", "http", "scaling"),
    ),
    Smoke(
        "all",
        "python -m benchmarks all",
        _module(
            "benchmarks",
            "all",
            "--smoke",
            "--results",
            "{tmp}/all.json",
            "--output",
            "{tmp}/all.md",
        ),
        shows=INPROCESS_SECTIONS + HTTP_SECTIONS + SCALING_SECTIONS,
        writes=(("all.md", REPORT_SECTIONS),),
        needs=("wrk",),
    ),
    Smoke(
        "profile",
        "python -m benchmarks profile",
        _module("benchmarks", "profile", "--smoke"),
        shows=(
            r"^microroute \(decorators\), GET /hello: [\d.]+ us/request unprofiled",
            r"^microroute \(decorators\), POST /echo: [\d.]+ us/request unprofiled",
            r"^microroute/\S+\.py:\d+ ",
        ),
    ),
    Smoke(
        "servers",
        "benchmarks/servers.py",
        _module("benchmarks.servers", "--smoke"),
        shows=(
            *(SERVERS_ROW.format(server=re.escape(s)) for s in SERVERS),
            r"^- microroute run / pywsgi \(tuned\), microroute /hello: [\d.]+x",
            r"^- p99 at 1,000 conns: microroute run [\d.]+ ms, pywsgi [\d.]+ ms",
            *(PEER_ROW.format(peer=re.escape(p)) for p in PEERS),
        ),
        needs=("wrk", "hey"),
        also_runs=("benchmarks/pywsgi_server.py",),  # the "pywsgi (tuned)" row
    ),
    Smoke(
        "servers-baseline",
        "benchmarks/servers.py",
        # This checkout as its own baseline: the plumbing, not a comparison.
        _module(
            "benchmarks.servers",
            "--smoke",
            "--baseline",
            ".",
            "--only",
            "microroute run,microroute.gunicorn",
        ),
        shows=(
            *(SERVERS_ROW.format(server=re.escape(s) + r" @\w+") for s in SERVERS[1::2]),
            *(
                BASELINE_ROW.format(app=re.escape(a), server=re.escape(s))
                for a in ("raw WSGI", "microroute (decorators)", "microroute (ids, access log off)")
                for s in SERVERS[1::2]
            ),
        ),
        needs=("wrk", "hey"),
    ),
    Smoke(
        "cache_hit",
        "benchmarks/cache_hit.py",
        _module("benchmarks.cache_hit", "--smoke"),
        shows=(
            r"^  cache HIT\s+\d+\.\d{3}\s",
            r"^  HIT \+ middleware\s+\d+\.\d{3}\s",
            r"^HIT/raw = [\d.]+x raw WSGI requests/s",
        ),
    ),
    Smoke(
        "data_cache",
        "benchmarks/data_cache.py",
        _module("benchmarks.data_cache", "--smoke"),
        shows=tuple(
            rf"^  {re.escape(label)}\s+\d+\.\d{{3}}\s+\d+\s+[\d.]+x$"
            for label in (
                "functools.lru_cache",
                "cachetools TTLCache",
                "@cached (memory)",
                "@cached (Redis)",
            )
        ),
        needs=("redis-server",),
    ),
    Smoke(
        "typed",
        "benchmarks/typed.py",
        _module("benchmarks.typed", "--smoke"),
        shows=(
            r"^microroute\s+[\d.]+\s+1\.00x$",
            r"^Litestar\s+[\d.]+\s+[\d.]+x$",
            r"^FastAPI\s+[\d.]+\s+[\d.]+x$",
            r"^target: microroute >= 5x FastAPI: [\d.]+x",
        ),
    ),
    Smoke(
        "observability",
        "benchmarks/observability.py",
        _module("benchmarks.observability", "--smoke"),
        shows=tuple(
            rf"^{re.escape(app)}\s+\d+\.\d\d\s+-?\d+\.\d\d\s"
            for app in (
                "microroute",
                "microroute + OTel",
                "microroute + metrics",
                "microroute + OTel + metrics",
                "Falcon + OTel",
                "FastAPI + OTel",
            )
        ),
    ),
    Smoke(
        "sse_streams",
        "benchmarks/sse_streams.py",
        ("benchmarks/sse_streams.py", "--smoke"),
        shows=tuple(
            SSE_ROW.format(server="microroute", app=app)
            for app in ("raw", "eventstream", "eventstream-nohb")
        ),
    ),
    Smoke(
        "sse_streams-gunicorn",
        "benchmarks/sse_streams.py",
        ("benchmarks/sse_streams.py", "--smoke", "--server", "gunicorn", "--apps", "eventstream"),
        shows=(SSE_ROW.format(server="gunicorn", app="eventstream"),),
    ),
]
SMOKES_BY_ID = {smoke.id: smoke for smoke in SMOKES}

#: Entry points another test already runs as a subprocess, small: that test's path.
ELSEWHERE = {"benchmarks/soak.py": "tests/e2e/test_soak_short.py"}

#: Modules in benchmarks/ that run nothing themselves: the entry points import them.
HELPERS = {
    "__init__.py",
    "calls.py",  # a WSGI call the way a server makes it
    "inprocess.py",  # `python -m benchmarks inprocess`
    "interleaved.py",  # benchmarks.servers' pinned run, with CPU per request
    "machine.py",  # what the figures were measured on
    "over_http.py",  # `python -m benchmarks http` and benchmarks.servers
    "processes.py",  # free ports and RSS, for soak.py and sse_streams.py
    "profiling.py",  # `python -m benchmarks profile`
    "report.py",  # `python -m benchmarks report`
    "results.py",  # the results file
    "scaling.py",  # `python -m benchmarks scaling`
    "soak_app.py",  # the app soak.py serves
    "stats.py",  # medians and tables
}


# -- running them --------------------------------------------------------------------


@dataclass
class Done:
    smoke: Smoke
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def explain(self) -> str:
        return (
            f"`python {' '.join(self.smoke.argv)}` exited {self.returncode} after"
            f" {self.seconds:.0f} s\n--- stdout (end) ---\n{self.stdout[-3000:]}"
            f"\n--- stderr (end) ---\n{self.stderr[-3000:]}"
        )


def _leftovers(group: int) -> list[str]:
    """What still runs in process group *group* after a grace period, then stopped."""
    deadline = time.monotonic() + 5
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return []
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) == group:
                left.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
        except OSError:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    return left


def _run(smoke: Smoke, tmp: Path) -> Done:
    for program in smoke.needs:
        if shutil.which(program) is None:
            pytest.fail(
                f"{smoke.entry} needs `{program}`, which is not installed:"
                f" apt-get install {program} (.ci/run does)"
            )
    argv = [sys.executable, *(a.replace("{tmp}", str(tmp)) for a in smoke.argv)]
    started = time.monotonic()
    # Its own session, so whatever it starts can be found, and stopped, by its group.
    process = subprocess.Popen(
        argv,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        stderr += f"\n(stopped after {TIMEOUT:.0f} s)"
    left = _leftovers(process.pid)
    done = Done(smoke, process.returncode, stdout, stderr, time.monotonic() - started)
    assert not left, f"{smoke.entry} left processes running: {left}\n{done.explain()}"
    return done


class Runs:
    """Each smoke run once per module, in one folder: ``report`` reads what others stored."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.done: dict[str, Done] = {}

    def __call__(self, smoke_id: str) -> Done:
        if smoke_id not in self.done:
            self.done[smoke_id] = _run(SMOKES_BY_ID[smoke_id], self.tmp)
        return self.done[smoke_id]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("benchmarks-smoke"))


@pytest.mark.parametrize("smoke", SMOKES, ids=lambda s: s.id)
def test_smoke_run(smoke: Smoke, runs: Runs) -> None:
    """The benchmark runs to its end, at its tiniest size, and prints its tables.

    README: "CI runs every benchmark at its tiniest size (`--smoke`), so one that
    stops working fails the suite."
    """
    for before in smoke.after:
        assert runs(before).returncode == 0, f"{before} must run first"
    done = runs(smoke.id)
    assert done.returncode == 0, done.explain()
    missing = [p for p in smoke.shows if not re.search(p, done.stdout, re.M)]
    assert not missing, f"not in its output: {missing}\n{done.explain()}"
    for name, patterns in smoke.writes:
        text = (runs.tmp / name).read_text()
        missing = [p for p in patterns if not re.search(p, text, re.M)]
        assert not missing, f"not in {name}: {missing}\n{text[-3000:]}"


# -- every entry point has one -------------------------------------------------------


def _commands() -> list[str]:
    """``python -m benchmarks``'s commands, as its --help lists them."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = re.search(r"\{([\w,-]+)\}", done.stdout)
    assert found, done.stdout
    return found.group(1).split(",")


def _entry_points() -> set[str]:
    """Every way to start a benchmark: each command of ``python -m benchmarks``, each script."""
    entries = {f"python -m benchmarks {command}" for command in _commands()}
    for path in sorted(BENCHMARKS.rglob("*.py")):
        if path.name == "__main__.py" and path.parent == BENCHMARKS:
            continue  # its commands, above
        if re.search(r"^if __name__ == .__main__.:", path.read_text(), re.M):
            entries.add(path.relative_to(REPO).as_posix())
    return entries


def test_every_entry_point_has_a_smoke_run() -> None:
    """A new benchmark script or command gets a row in SMOKES, or this fails."""
    covered = {s.entry for s in SMOKES} | {e for s in SMOKES for e in s.also_runs}
    entries = _entry_points()
    assert entries - covered - set(ELSEWHERE) == set(), "add a row to SMOKES for these"
    assert covered | set(ELSEWHERE) <= entries, "a row names no entry point"


def test_entry_points_smoked_elsewhere_are() -> None:
    for entry, test in ELSEWHERE.items():
        assert f'"{Path(entry).name}"' in (REPO / test).read_text(), f"{test} runs {entry}"


def test_every_module_is_an_entry_point_or_a_helper() -> None:
    """A new file in benchmarks/ is either run here (a main guard) or named a helper."""
    entries = _entry_points()
    modules = {p.name for p in BENCHMARKS.glob("*.py") if p.name != "__main__.py"}
    scripts = {Path(e).name for e in entries if e.startswith("benchmarks/")}
    assert modules - scripts - HELPERS == set(), "a script needs a main guard and a smoke row"
    assert modules >= HELPERS, "HELPERS names a file that is gone"
    assert not HELPERS & scripts, "a helper with a main guard is an entry point"
