"""A newcomer's walk: README's commands and every example's, as written, in a fresh virtualenv.

Issue 23: "Every README and example command works in a fresh venv exactly as
written, in order, including the install line it needs." The commands are read
from the text itself: README's ``sh`` blocks, each example's ``README.md``
``sh`` blocks and the indented command lines of each example's docstring. The
files README has the reader write (``# hello.py``, "this ``logging.json``") are
written from its blocks. Then, in a copy of the project (README's commands run
from its folder), every command is run in order:

* README's first command makes the virtualenv (``python3 -m venv .venv``,
  ``pip install -e .``); every later command runs with it first on ``PATH``, as
  in an activated shell, so ``pip install "microroute[gunicorn]"`` installs that
  extra, from pip's cache when it can;
* a server (``microroute run``, ``gunicorn``; a trailing ``&`` too) is started
  in its own process group and must answer HTTP; a later server on the same
  port replaces it, as when the reader stops one and starts the next; all are
  stopped by PID at the end of their document;
* a ``curl`` line runs as real curl (``-sS -w`` added to read the status) and
  must get a 2xx, or the status its comment names (``# a 422``, ``# 404 ...``),
  and the JSON its comment shows, when it shows one; ``curl -N`` on an endless
  stream must get its first bytes;
* anything else (``microroute openapi``, ``ulimit``...) must exit 0, and print
  what its comment shows when the comment begins with the command's own name
  (``microroute --version  # microroute 0.1.0.dev0 (server compiled with mypyc)``).

Two substitutions keep it to this machine: every port the text names moves to a
free one (``--port``, URLs, and gunicorn's bind through ``GUNICORN_CMD_ARGS``,
its own setting), and ``LLM_UPSTREAM`` (which examples/llm_proxy documents)
follows the fake upstream's port. The only commands not run are the
contributors' (the test suite itself, its linters: ``bash .ci/run``, ``pytest``,
``tox``...), since this test is part of that suite, and the few listed in
``TEMPLATES``: patterns for the reader's own project (``microroute run app.py``),
each with why.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from servers import REPO, free_port

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"
#: The whole walk stops here, whatever is left.
WALK_BUDGET = 420.0
#: A command that installs (the first one makes the virtualenv too).
INSTALL_TIMEOUT = 300.0
COMMAND_TIMEOUT = 60.0
READY_TIMEOUT = 45.0
STOP_TIMEOUT = 10.0
#: Seconds a gunicorn runs before it is stopped (see Walk.stop).
GUNICORN_SETTLE = 2.0
#: How long ``curl -N`` may read an endless stream.
STREAM_SECONDS = 3.0

#: The contributors' commands: the suite this test is part of, and its linters.
CONTRIBUTOR = re.compile(r"\.ci/run|\bpytest\b|\btox\b|\bruff\b|\bmypy\b|\[test,dev\]")
SERVER = re.compile(r"\bmicroroute (?:run|dev)\b|(?:^|[\s;&|(])(?:gunicorn|granian)\s+-")
PORT_OPTION = re.compile(r"--port[ =](\d+)")
URL_PORT = re.compile(r"\b(localhost|127\.0\.0\.1):(\d+)")
#: The first word of a command line in a docstring (after any VAR=value).
COMMAND_WORDS = {
    "pip", "microroute", "python", "python3", "curl", "cd", "gunicorn", "granian", "ulimit",
}  # fmt: skip
#: README commands that are a pattern for the reader's own project, not runnable
#: here as written: each with why. The walk checks that each is still in the text.
TEMPLATES = {
    "MICROROUTE_BUILD_ID=$GIT_SHA microroute warm serve.py --paths hot-paths.txt": (
        "a release step: the reader's own app, path list and shared store"
    ),
    "OTEL_SERVICE_NAME=api opentelemetry-instrument microroute run app.py": (
        "the reader's own app.py, exporting to a collector"
    ),
    "rm -rf /run/api-metrics && mkdir -p /run/api-metrics": "a folder outside the project",
    "microroute dev": "the reader's own ./app folder (an app/ where it runs)",
    "MICROROUTE_APP=app granian --interface wsgi --workers 4 microroute.wsgi:app": (
        "the reader's own discovered project (an app/ folder where it runs)"
    ),
    "PROMETHEUS_MULTIPROC_DIR=/run/api-metrics \\\n"
    "    gunicorn -c gunicorn.conf.py -k microroute.gunicorn.Worker -w 4 app:app": (
        "the reader's own app:app and gunicorn.conf.py"
    ),
}
#: Environment a document's own text names, following the ports the walk moves.
DOCUMENTED_ENV = {"LLM_UPSTREAM": "http://127.0.0.1:{8001}/v1/chat/completions"}


@dataclass
class Command:
    text: str  # as written (continuation lines joined), comment included
    source: str  # file:line

    @property
    def command(self) -> str:
        return split_comment(self.text)[0]

    @property
    def comment(self) -> str:
        return split_comment(self.text)[1]


@dataclass
class Document:
    path: Path
    commands: list[Command]
    files: dict[str, str] = field(default_factory=dict)  # files the reader writes


# -- reading the text ------------------------------------------------------------------


def split_comment(line: str) -> tuple[str, str]:
    """``cmd  # comment`` -> (``cmd``, ``comment``), a ``#`` inside quotes not counted."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def complete(text: str) -> bool:
    """Whether *text* is a whole command: no quote left open, no trailing backslash."""
    command = split_comment(text)[0]
    if command.endswith("\\"):
        return False
    quote = None
    for char in command:
        if quote and char == quote:
            quote = None
        elif not quote and char in "'\"":
            quote = char
    return quote is None


def commands_of(lines: list[tuple[int, str]], source: Path) -> list[Command]:
    """Lines (numbered) to commands: a command may go on over several lines."""
    found: list[Command] = []
    pending: list[str] = []
    first = 0
    for number, line in lines:
        if not pending:
            if not line.strip():
                continue
            first = number
        pending.append(line.strip() if not pending else line.rstrip())
        text = "\n".join(pending)
        if complete(text):
            found.append(Command(text, f"{source.relative_to(REPO)}:{first}"))
            pending = []
    assert not pending, f"{source}: a command never ends: {pending}"
    return found


def markdown(path: Path) -> Document:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    commands: list[Command] = []
    files: dict[str, str] = {}
    index = 0
    while index < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[index])
        if not opening:
            index += 1
            continue
        end = lines.index("```", index + 1)
        body = lines[index + 1 : end]
        if opening.group(1) == "sh":
            numbered = list(enumerate(body, start=index + 2))
            commands += commands_of(numbered, path)
        named = re.match(r"# (\w+\.\w+)$", body[0]) if body else None
        before = "\n".join(lines[max(0, index - 3) : index])
        told = re.search(r"this `([\w.]+)`:\s*$", before)
        if opening.group(1) == "python" and named:
            files[named.group(1)] = "\n".join(body) + "\n"
        elif told:
            files[told.group(1)] = "\n".join(body) + "\n"
        index = end + 1
    return Document(path, commands, files)


def docstring(path: Path) -> Document:
    """The command lines of a module's docstring: indented, starting with a command word."""
    node = ast.parse(path.read_text(encoding="utf-8")).body[0]
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        return Document(path, [])
    numbered = list(enumerate(str(node.value.value).splitlines(), start=node.lineno))
    chosen = [
        (number, line)
        for number, line in numbered
        if line.startswith("    ") and first_word(line) in COMMAND_WORDS
    ]
    # A command may go on over the lines after it (an open quote): take those too.
    lines: list[tuple[int, str]] = []
    for number, line in numbered:
        if (number, line) in chosen or (lines and not complete(joined(lines))):
            lines.append((number, line))
        elif lines and lines[-1][1]:
            lines.append((number, ""))  # a command ends
    return Document(path, commands_of(lines, path))


def joined(lines: list[tuple[int, str]]) -> str:
    """The text of the last command in *lines* (after the last blank line)."""
    text = [line for _, line in lines]
    while "" in text:
        text = text[text.index("") + 1 :]
    return "\n".join(text)


def first_word(line: str) -> str:
    words = line.split()
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    return words[0] if words else ""


def documents() -> list[Document]:
    """README first (it makes the virtualenv), then every example's, by path."""
    found = [markdown(REPO / "README.md")]
    for path in sorted(EXAMPLES.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        if path.name == "README.md":
            found.append(markdown(path))
        elif path.suffix == ".py":
            doc = docstring(path)
            if doc.commands:
                found.append(doc)
    return found


# -- the walk ---------------------------------------------------------------------------


@dataclass
class Server:
    command: Command
    process: subprocess.Popen[bytes]
    log: Path
    started: float


class Walk:
    def __init__(self, root: Path, logs: Path) -> None:
        self.root = root
        self.logs = logs
        self.started = time.monotonic()
        self.steps: list[tuple[str, str, float]] = []
        # As in a shell where README's virtualenv is active; nothing of this test's own.
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
        path = [p for p in path if Path(p).resolve() != Path(sys.executable).parent.resolve()]
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("PYTEST")
        }
        self.env["PATH"] = os.pathsep.join([str(root / ".venv" / "bin"), *path])
        self.env["VIRTUAL_ENV"] = str(root / ".venv")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.ports: dict[int, int] = {}
        self.servers: dict[int, Server] = {}
        self.notes: list[str] = []

    # one document at a time: its ports, its servers
    def document(self, doc: Document) -> None:
        for name, content in doc.files.items():
            (self.root / name).write_text(content, encoding="utf-8")
        self.ports = {}
        for command in doc.commands:
            for match in PORT_OPTION.finditer(command.command):
                self.ports.setdefault(int(match.group(1)), free_port())
            for match in URL_PORT.finditer(command.command):
                self.ports.setdefault(int(match.group(2)), free_port())
        self.ports.setdefault(8000, free_port())
        self.doc_env = {
            name: re.sub(r"\{(\d+)\}", lambda m: str(self.ports[int(m.group(1))]), value)
            for name, value in DOCUMENTED_ENV.items()
            if all(int(p) in self.ports for p in re.findall(r"\{(\d+)\}", value))
        }
        try:
            for command in doc.commands:
                assert time.monotonic() - self.started < WALK_BUDGET, "the walk ran out of time"
                self.step(command)
        finally:
            for port in list(self.servers):
                self.stop(port)

    def moved(self, text: str) -> str:
        text = PORT_OPTION.sub(lambda m: f"--port {self.ports[int(m.group(1))]}", text)
        return URL_PORT.sub(lambda m: f"{m.group(1)}:{self.ports[int(m.group(2))]}", text)

    def step(self, command: Command) -> None:
        began = time.monotonic()
        text = command.command
        if CONTRIBUTOR.search(text):
            kind = "skipped (contributors')"
        elif text in TEMPLATES:
            kind = f"skipped (a pattern: {TEMPLATES[text]})"
        elif SERVER.search(text):
            kind = "server"
            self.serve(command)
        elif text.startswith("curl "):
            kind = "curl"
            self.curl(command)
        else:
            kind = "command"
            out = self.run(command, INSTALL_TIMEOUT if "pip install" in text else COMMAND_TIMEOUT)
            shown = command.comment
            if shown.split(" ", 1)[0] == first_word(text):  # `microroute --version  # microroute`
                assert out.strip() == shown, f"{command.source}: `{command.text}` printed {out!r}"
        self.steps.append((command.source, f"{kind}: {command.text}", time.monotonic() - began))

    def run(self, command: Command, timeout: float) -> str:
        done = subprocess.run(
            ["bash", "-c", self.moved(command.command)],
            cwd=self.root,
            env={**self.env, **self.doc_env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"{command.source}: `{command.text}` exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
        return done.stdout

    def serve(self, command: Command) -> None:
        text = command.command.removesuffix("&").rstrip()
        option = PORT_OPTION.search(text)
        port = int(option.group(1)) if option else 8000
        if port in self.servers:
            self.stop(port)  # the reader stops the one before, and starts this one
        text = self.moved(text)
        if not option and re.search(r"\bmicroroute (?:run|dev)\b", text):
            text += f" --port {self.ports[port]}"
        if not option and re.search(r"(?:^|\s)granian\s", text):  # granian's own option
            text = re.sub(r"(?:^|(?<=\s))granian\s", f"granian --port {self.ports[port]} ", text)
        env = {
            **self.env,
            **self.doc_env,
            "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{self.ports[port]}",
        }
        log = self.logs / f"server-{len(self.steps)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", text],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # bash, the server, its workers: one group to stop
            )
        server = Server(command, process, log, time.monotonic())
        self.servers[port] = server
        timeout = INSTALL_TIMEOUT if "pip install" in text else READY_TIMEOUT
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.ports[port]}/"
        while True:
            if process.poll() is not None:
                output = log.read_text(errors="replace")
                pytest.fail(f"{command.source}: `{command.text}` exited:\n{output[-4000:]}")
            try:
                answer = requests.get(url, timeout=2)
            except requests.RequestException:
                assert time.monotonic() < deadline, f"{command.source}: no answer on {url}"
                time.sleep(0.1)
                continue
            assert answer.status_code < 500, f"{command.source}: {answer.status_code} on /"
            return

    def stop(self, port: int) -> None:
        """Stop a server as the reader would, and wait until every process of it is gone
        (the next server wants the port)."""
        server = self.servers.pop(port)
        gunicorn = "gunicorn" in server.command.command
        if gunicorn:
            # gunicorn (27, either worker class) that is told to stop while one of its
            # workers still boots waits its whole graceful timeout (30 s) for it: let
            # the workers finish booting first, as a reader's pause would.
            time.sleep(max(0.0, server.started + GUNICORN_SETTLE - time.monotonic()))
        group = server.process.pid  # the leader's PID names the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(group):
            server.process.poll()  # reap the leader
            if time.monotonic() > deadline:
                os.killpg(group, signal.SIGKILL)
                assert gunicorn, f"{server.command.source}: still running after SIGTERM"
                self.notes.append(f"{server.command.source}: gunicorn killed, slow to stop")
                break
            time.sleep(0.05)
        server.process.wait()
        output = server.log.read_text(errors="replace")
        assert "Traceback" not in output, f"{server.command.source}:\n{output[-4000:]}"

    def curl(self, command: Command) -> None:
        text = self.moved(command.command)
        argv_text = "curl -sS -w '\\n%{http_code}' " + text.removeprefix("curl ")
        stream = " -N " in f" {text} "
        try:
            done = subprocess.run(
                ["bash", "-c", argv_text],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=STREAM_SECONDS if stream else COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            # An endless stream: it works if its first bytes came.
            assert stream, f"{command.source}: `{command.text}` did not end"
            got = exc.stdout or b""
            assert got.strip(), f"{command.source}: `{command.text}` sent nothing"
            return
        assert done.returncode == 0, f"{command.source}: `{command.text}`: {done.stderr}"
        body, _, code = done.stdout.rpartition("\n")
        status, shown = expectation(command.comment)
        if status is None:
            assert 200 <= int(code) < 300, f"{command.source}: `{command.text}` got {code}: {body}"
        else:
            assert int(code) == status, f"{command.source}: `{command.text}` got {code}: {body}"
        if shown is not None and not stream:
            assert json.loads(body) == shown, f"{command.source}: `{command.text}` got {body}"


def expectation(comment: str) -> tuple[int | None, object | None]:
    """What a curl line's comment says it gets: a status (``a 422``, ``404 {...}``) and
    JSON (``{"message": ...}``), either or both; ``...`` in it means words left out."""
    status = None
    rest = comment
    found = re.match(r"^(?:a )?(\d{3})\b[:,]?\s*", rest)
    if found:
        status, rest = int(found.group(1)), rest[found.end() :]
    shown = None
    if rest[:1] in "{[" and rest and "..." not in rest:
        shown, end = json.JSONDecoder().raw_decode(rest)
        later = re.search(r"\ba (\d{3})\b", rest[end:])
        if later:
            status = int(later.group(1))
    return status, shown


def alive(group: int) -> bool:
    """Whether a process of *group* still runs (a zombie left for its parent does not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


# -- the test ----------------------------------------------------------------------------


def copy_project(root: Path) -> None:
    """What a reader has after cloning: the package, its metadata and the examples."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3*", "*.egg-info")
    shutil.copytree(REPO / "microroute", root / "microroute", ignore=ignore)
    shutil.copytree(REPO / "examples", root / "examples", ignore=ignore)
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy(REPO / name, root / name)


def test_the_commands_are_read_from_the_text() -> None:
    """The extraction finds what the text shows: a broken reader must not pass silently."""
    docs = {str(doc.path.relative_to(REPO)): doc for doc in documents()}
    readme = docs["README.md"]
    assert readme.commands[0].command.startswith("python3 -m venv .venv && .venv/bin/pip")
    assert set(readme.files) == {"hello.py", "logging.json"}
    texts = [c.command for c in readme.commands]
    assert 'pip install "microroute[gunicorn]"' in texts
    assert texts.index('pip install "microroute[gunicorn]"') < texts.index(
        "gunicorn -k gevent hello:app"
    )
    assert set(TEMPLATES) <= set(texts), set(TEMPLATES) - set(texts)
    long_one = [t for t in texts if "--worker-connections" in t]
    assert len(long_one) == 1 and long_one[0].endswith("microroute.wsgi:app")
    typed = [c.command for c in docs["examples/typed_api.py"].commands]
    assert typed[0] == 'pip install "microroute[docs]"'
    assert any(t.startswith('curl --json \'{"title": "Dune"') and "\n" in t for t in typed)
    assert set(docs) >= {
        "examples/hello.py",
        "examples/typed_api.py",
        "examples/blog/README.md",
        "examples/auth/api.py",
        "examples/sse_clock.py",
        "examples/llm_proxy/README.md",
    }
    for doc in docs.values():
        if doc.path.name != "README.md" or doc.path.parent != REPO:
            kinds = [bool(SERVER.search(c.command)) for c in doc.commands]
            assert any(kinds), f"{doc.path}: no server command found"


def test_every_readme_and_example_command_works_in_a_fresh_venv(tmp_path: Path) -> None:
    """README: 'Every one of them and every command of the examples, all but the test suite
    and its linters, is run as written in a fresh virtualenv'."""
    root = tmp_path / "project"
    copy_project(root)
    logs = tmp_path / "logs"
    logs.mkdir()
    walk = Walk(root, logs)
    try:
        for doc in documents():
            walk.document(doc)
    finally:
        took = time.monotonic() - walk.started
        report = "\n".join(f"{s:>6.1f}s  {src}  {what}" for src, what, s in walk.steps)
        notes = "".join(f"\nnote: {note}" for note in walk.notes)
        print(f"\nthe newcomer's walk: {len(walk.steps)} commands in {took:.0f} s\n{report}{notes}")
    installed = subprocess.run(
        [
            str(root / ".venv" / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, json, microroute;"
            "print(json.loads(m.distribution('microroute').read_text('direct_url.json'))['url'])",
        ],
        cwd=tmp_path,  # not a folder holding a microroute package: the installed one
        env=walk.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # README's installs (`pip install -e .`, then the compiled server's `pip install .`)
    # installed the copy, not a release from the index: the walk ran this checkout.
    assert installed.stdout.strip() == root.as_uri(), installed.stdout
