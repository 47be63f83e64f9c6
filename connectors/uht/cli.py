"""``herstelbus uht ...``: UHT's commands (registered on the main CLI in ``services/cli.py``).
Kafka and the database load only when a command runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def uht() -> None:
    """UHT's side: synthetic events, publishing a file, the outbox relay."""


@uht.command()
@click.option("--count", default=3000, show_default=True, help="About this many events (whole dossiers).")
@click.option("--seed", default=1, show_default=True, help="Same seed, same file.")
@click.option("--out", type=click.File("w"), default="-", help="JSON Lines file (default: stdout).")
def generate(count: int, seed: int, out) -> None:
    """Write synthetic UHT events (invented persons) as JSON Lines, reproducible by seed."""
    import json

    from herstelbus.connectors.uht.synthetic import generate as events

    for event in events(count, seed=seed):
        out.write(json.dumps(event, ensure_ascii=False) + "\n")


def _quiet_kafka() -> None:
    import logging

    from herstelbus.logs import configure_logging

    configure_logging()
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per connection: noise here


@uht.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report only; publish nothing.")
def publish(file: Path, dry_run: bool) -> None:
    """Validate every event in FILE, report, then publish the valid ones to the ingest topics.

    FILE is JSON Lines (.jsonl, as `uht generate` writes) or CSV (.csv: a header row with the
    same names flattened with dots, e.g. persoon.bsn, and a `type` column; an empty cell is null).
    The whole file is validated first; the report (stdout) counts events per type and lists every
    rejected line with reason codes and field paths, never a value. An event_id that occurs twice
    is published once. Events are keyed by dossiernummer, with CloudEvents headers, acks=all.

    Exit status: 0 when every event was valid; 1 when some lines were rejected — the valid ones
    ARE published all the same (unless --dry-run); 1 too, with one line on stderr and nothing
    published, when the file cannot be read or the broker does not answer.
    """
    from herstelbus.connectors.uht import bestand

    bestand.formaat_van(file)  # a missing or foreign file: one line, before any progress output
    size = file.stat().st_size
    with click.progressbar(length=size, label="validating", file=sys.stderr) as bar:
        rapport = bestand.valideer(file, progress=bar.update)
    for line in rapport.regels():
        click.echo(line)
    if dry_run:
        click.echo(f"dry run: nothing published ({rapport.geldig} would be)")
    elif rapport.geldig:
        _publish(file, rapport)
    else:
        click.echo("nothing to publish")
    if not rapport.alles_geldig:
        sys.exit(1)


def _publish(file: Path, rapport) -> None:
    from collections import Counter

    from kafka.errors import KafkaError

    from herstelbus.connectors.uht import bestand
    from herstelbus.connectors.uht.publish import publish as send
    from herstelbus.errors import HerstelbusError
    from herstelbus.settings import get_settings

    _quiet_kafka()
    bootstrap = get_settings().bootstrap
    with click.progressbar(length=rapport.geldig, label="publishing", file=sys.stderr) as bar:
        def counted():
            for item in bestand.geldige(file, rapport):
                bar.update(1)
                yield item

        try:
            positions = send(bootstrap, counted())
        except KafkaError as exc:
            raise HerstelbusError(f"publishing to {bootstrap} failed ({type(exc).__name__}); publishing the "
                                  "file again is safe: the router drops event_ids it already routed") from None
    per_topic = Counter(topic for topic, _, _ in positions)
    click.echo(f"published {len(positions)} events, acknowledged by {bootstrap}: "
               + ", ".join(f"{t} {c}" for t, c in sorted(per_topic.items())))


@uht.command()
@click.option("--once", is_flag=True, help="Stop when no unsent rows remain (else poll every second).")
def outbox(once: bool) -> None:
    """Relay UHT's transactional outbox (HERSTELBUS_OUTBOX_URL, default SQLite in the data dir) to
    the ingest topics: unsent rows in id order, each marked sent only after the broker's ack;
    invalid rows are marked with their reason and never published. Stops cleanly on SIGTERM/SIGINT."""
    import signal
    import threading

    from kafka.errors import KafkaError

    from herstelbus.connectors.uht.outbox import Relay, open_engine
    from herstelbus.errors import HerstelbusError
    from herstelbus.settings import get_settings

    _quiet_kafka()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    engine = open_engine()
    bootstrap = get_settings().bootstrap
    try:
        relay = Relay(engine, bootstrap)
    except KafkaError as exc:
        raise HerstelbusError(f"no broker answers on {bootstrap} ({type(exc).__name__})") from None
    try:
        stats = relay.run(once, stop)
    finally:
        relay.close()
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(stats.line())
