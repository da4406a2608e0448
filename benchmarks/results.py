"""The results file, ``benchmarks/results/latest.json`` (gitignored).

Each command stores its own section (``inprocess``, ``http``, ``scaling``), with
the machine it ran on and when, so running one command keeps the others'
latest results and ``python -m benchmarks report`` renders whatever is there.
A ``--smoke`` run stores into ``smoke.json`` beside it instead, so its
meaningless figures never replace a real run's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .machine import describe

__all__ = ["RESULTS", "SMOKE_RESULTS", "load", "save"]

RESULTS = Path(__file__).parent / "results" / "latest.json"
SMOKE_RESULTS = RESULTS.with_name("smoke.json")


def load(path: Path = RESULTS) -> dict[str, Any]:
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def save(section: str, data: dict[str, Any], path: Path = RESULTS) -> None:
    """Store *data* as *section*, stamped with the machine and the time."""
    everything = load(path)
    everything[section] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": describe(),
        **data,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(everything, indent=2, ensure_ascii=False) + "\n")
