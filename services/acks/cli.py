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


@click.command()
@click.option("--gemeente", default=None, help="Only this gemeente (GMxxxx).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per gemeente.")
def status(gemeente: str | None, as_json: bool) -> None:
    """Per gemeente: routed, ontvangen, verwerkt, geweigerd, overdue; age of the oldest unacknowledged event."""
    from herstelbus.acks.state import AcksStore

    now = datetime.now(timezone.utc)
    rows = []
    for t in AcksStore.from_settings().tellingen(gemeente):
        row = asdict(t)
        oudste = row.pop("oudste_open")
        row["oudste_open_s"] = None if oudste is None else int((now - oudste).total_seconds())
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'gemeente':8} {'routed':>7} {'ontvangen':>9} {'verwerkt':>8} {'geweigerd':>9} {'overdue':>7}  oudste open")
    for r in rows:
        age = "-" if r["oudste_open_s"] is None else f"{r['oudste_open_s'] // 3600}h{r['oudste_open_s'] % 3600 // 60:02d}m"
        click.echo(f"{r['gemeentecode']:8} {r['routed']:>7} {r['ontvangen']:>9} {r['verwerkt']:>8} "
                   f"{r['geweigerd']:>9} {r['overdue']:>7}  {age}")


COMMANDS = (acks, status)
