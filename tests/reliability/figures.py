"""The reliability suite's shared bits: how big a run is, and where its figures go.

``make test`` runs every scenario short (a few thousand events, a few faults); ``make reliability``
sets HERSTELBUS_RELIABILITY=full and runs them at the sizes issue 10 names. Each scenario reports
its figures with :func:`record`; the session writes them to tests/reliability/RESULTS.md (full
runs) or only prints them (short runs), so the committed RESULTS.md is always a full run's.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

FULL = os.environ.get("HERSTELBUS_RELIABILITY") == "full"
HERE = Path(__file__).parent
_figures: dict[str, dict] = {}


def size(short: int, full: int) -> int:
    """The scenario's size: ``full`` under make reliability, ``short`` in make test."""
    return full if FULL else short


def record(scenario: str, **figures: object) -> None:
    """A scenario's figures (events in, routed, dead-lettered, duplicates at sinks, lost, faults, ...)."""
    _figures[scenario] = figures
    print(f"\n[reliability] {scenario}: {json.dumps(figures, default=str)}")


LEGEND = (
    "Every scenario fails on `lost` > 0 or `double_effects` > 0 and checks one terminal receipt per",
    "input. `duplicates_at_sinks` / `duplicates_emitted` are redeliveries (at-least-once: a routed",
    "record written again after a kill, a webhook POST repeated after a timeout) that carry the same",
    "event id and the same data, so a gemeente recognises them: once in effect. `duplicate` counts",
    "inputs UHT published twice on purpose (DUPLICATE receipts). `reconcile` is `herstelbus",
    "reconcile` over the run's ingest records.",
)


def write_results() -> Path | None:
    if not (FULL and _figures):
        return None
    lines = ["# Reliability suite: results of the last full run (`make reliability`)", "",
             f"Run {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {platform.node()} "
             f"({os.cpu_count()} cores, Python {platform.python_version()}).", "", *LEGEND, ""]
    for scenario, figures in sorted(_figures.items()):
        lines += [f"## {scenario}", "", "| figure | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in figures.items()]
        lines.append("")
    path = HERE / "RESULTS.md"
    path.write_text("\n".join(lines))
    return path
