"""The package surface: public names, laziness, typing marker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import microroute

PUBLIC = [
    "App",
    "Context",
    "ControlFlow",
    "HTTPError",
    "Request",
    "Response",
    "RequestValidationError",
    "Router",
    "StartupError",
    "ValidationError",
    "abort",
    "not_found",
    "permanent_redirect",
    "redirect",
    "route",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_import_from_top_level(name: str) -> None:
    assert name in microroute.__all__
    assert getattr(microroute, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        microroute.nope  # noqa: B018


def test_import_is_lazy_so_gevent_can_patch_first() -> None:
    code = (
        "import sys, microroute; "
        "heavy = [m for m in ('werkzeug', 'ssl', 'socket') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == ""


def test_package_is_typed() -> None:
    assert (Path(microroute.__file__).parent / "py.typed").is_file()


def test_control_flow_is_not_an_exception() -> None:
    assert not issubclass(microroute.ControlFlow, Exception)
    assert issubclass(microroute.HTTPError, Exception)
    assert issubclass(microroute.ValidationError, microroute.HTTPError)
