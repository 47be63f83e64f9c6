"""``herstelbus acks`` and ``herstelbus status``."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone

import click


@click.command()
def acks() -> None:
    """Run the acknowledgement relay: gemeente acks -> statusberichten for UHT, OVERDUE notices."""
    from herstelbus.acks.app import create_app
    from herstelbus.faustkit import run_worker
    from herstelbus.settings import get_settings

    settings = get_settings()
    run_worker(create_app(settings), settings)


def status_rows(gemeente: str | None = None) -> list[dict]:
    """Per gemeente the counts of the acks store, and the oldest open event's age in seconds."""
    from herstelbus.acks.state import AcksStore

    now = datetime.now(timezone.utc)
    rows = []
    for t in AcksStore.from_settings().tellingen(gemeente):
        row = asdict(t)
        oudste = row.pop("oudste_open")
        row["oudste_open_s"] = None if oudste is None else int((now - oudste).total_seconds())
        rows.append(row)
    return rows


def status_table(rows: list[dict]) -> list[str]:
    """``herstelbus status``'s table: a header and one line per row of :func:`status_rows`."""
    lines = [f"{'gemeente':8} {'routed':>7} {'ontvangen':>9} {'verwerkt':>8} {'geweigerd':>9} {'overdue':>7}  oudste open"]
    for r in rows:
        age = "-" if r["oudste_open_s"] is None else f"{r['oudste_open_s'] // 3600}h{r['oudste_open_s'] % 3600 // 60:02d}m"
        lines.append(f"{r['gemeentecode']:8} {r['routed']:>7} {r['ontvangen']:>9} {r['verwerkt']:>8} "
                     f"{r['geweigerd']:>9} {r['overdue']:>7}  {age}")
    return lines


@click.command()
@click.option("--gemeente", default=None, help="Only this gemeente (GMxxxx).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per gemeente.")
def status(gemeente: str | None, as_json: bool) -> None:
    """Per gemeente: routed, ontvangen, verwerkt, geweigerd, overdue; age of the oldest unacknowledged event."""
    rows = status_rows(gemeente)
    click.echo(json.dumps(rows) if as_json else "\n".join(status_table(rows)))


COMMANDS = (acks, status)
