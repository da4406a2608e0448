"""What an install brings, and what a missing extra says (issue 23, item 1).

The fresh-virtualenv walk through README's and the examples' commands is
``tests/e2e/test_newcomer_walk.py``; these are the quick checks of the same
promises, in this interpreter or a subprocess of it.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import microroute

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

#: Makes ``import requests`` fail in a subprocess, as where the extra is not installed.
NO_REQUESTS = "import sys; sys.modules['requests'] = None\n"


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    return config


def requirements(text: str) -> list[str]:
    names = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(re.split(r"[<>=!~\[;]", line)[0].strip().lower())
    return names


def test_msgspec_is_a_run_time_dependency_and_typed_stays_an_alias() -> None:
    """README: 'which comes with microroute (one wheel, no dependencies;
    `microroute[typed]` still installs, and adds nothing)'."""
    config = setup_cfg()
    assert "msgspec" in requirements(config["options"]["install_requires"])
    assert requirements(config["options.extras_require"]["typed"]) == ["msgspec"]


def test_the_testing_extra_brings_requests_and_pytest_and_docs_brings_swagger_ui() -> None:
    """DESIGN: "Both need the `microroute[testing]` extra (requests, pytest)"; `/docs`'s
    assets come from a PyPI package (the `docs` extra)."""
    extras = setup_cfg()["options.extras_require"]
    assert sorted(requirements(extras["testing"])) == ["pytest", "requests"]
    assert requirements(extras["docs"]) == ["swagger-ui-py"]
    # The contributors' extra runs every test, the docs page's included.
    assert {"requests", "pytest", "swagger-ui-py", "msgspec"} <= set(requirements(extras["test"]))


def test_version_flag_prints_the_package_version() -> None:
    """DESIGN: "`microroute --version`". README: "`microroute --version` says which one
    runs" (the compiled server or the pure Python one)."""
    done = subprocess.run(
        [sys.executable, "-m", "microroute", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    expected = f"microroute {microroute.__version__}"
    if os.environ.get("MICROROUTE_EXPECT_COMPILED"):  # .ci/run's pass on the compiled install
        expected += " (server compiled with mypyc)"
    assert done.stdout.strip() == expected


def test_testing_without_requests_names_the_extra() -> None:
    """README: 'The test client and the pytest fixture need the `testing` extra (requests
    and pytest); without it, `microroute.testing` says so'."""
    code = NO_REQUESTS + "from microroute.testing import TestClient\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        'ImportError: microroute.testing needs requests: pip install "microroute[testing]"'
    )


def test_the_client_fixture_without_requests_names_the_extra(pytester: pytest.Pytester) -> None:
    """The pytest plugin loads wherever microroute is installed; its `client` fixture
    without requests fails the test with one line naming the extra."""
    pytester.makeconftest(
        NO_REQUESTS
        + textwrap.dedent(
            """
            import pytest

            @pytest.fixture
            def app():
                return lambda environ, start_response: []
            """
        )
    )
    pytester.makepyfile("def test_it(client):\n    pass\n")
    with pytest.MonkeyPatch.context() as mp:
        # Only this plugin (the entry point would register it under another name too).
        mp.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        result = pytester.runpytest_subprocess("-p", "microroute.pytest_plugin")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert (
        'the `client` fixture: microroute.testing needs requests: pip install "microroute[testing]"'
        in out
    )
    assert "Traceback" not in out
