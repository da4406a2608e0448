"""What the numbers were measured on: CPU, cores, Python, package versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe", "wrk_version"]

PACKAGES = ("microroute", "werkzeug", "flask", "falcon", "bottle", "gevent", "gunicorn", "orjson")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def wrk_version() -> str | None:
    """``wrk``'s version line, or ``None`` when it is not installed."""
    path = shutil.which("wrk")
    if path is None:
        return None
    # `wrk -v` prints its version, then usage, and exits non-zero.
    done = subprocess.run([path, "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def describe() -> dict[str, Any]:
    """The machine and software, for the JSON file and BENCHMARKS.md."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in PACKAGES},
        "wrk": wrk_version(),
    }
