"""``herstelbus gemeente consume`` and ``gemeente ack``: thin commands over the SDK (registered on
the ``gemeente`` group in ``services/keystore/cli.py``). Kafka and the crypto load only when they run."""

from __future__ import annotations

from pathlib import Path

import click


ONCE_KEYSTORE_WAIT_S = 120.0


def check_gemeente(gemeentecode: str, what: str = "GEMEENTECODE") -> None:
    from herstelbus.core.privacy import PrivacyError
    from herstelbus.core.privacy.keys import check_gemeentecode
    from herstelbus.errors import HerstelbusError

    try:
        check_gemeentecode(gemeentecode)
    except PrivacyError:
        raise HerstelbusError(f"{what}: GM and four digits expected") from None


@click.command()
@click.argument("gemeentecode")
@click.option("--key-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The gemeente's private key(s), *.pem; several during a key rotation.")
@click.option("--sink", "sink_spec", required=True,
              help="Where opened events go: jsonl:DIR, webhook:URL (env HERSTELBUS_WEBHOOK_SECRET, "
                   "optional HERSTELBUS_WEBHOOK_TOKEN) or sql:URL (sqlite:///FILE, postgresql+psycopg://...).")
@click.option("--ack", is_flag=True, help="Acknowledge: ONTVANGEN once stored, GEWEIGERD/ONLEESBAAR when unreadable.")
@click.option("--once", is_flag=True, help="Stop when caught up with the topic's end at start.")
@click.option("--keystore", "keystore_url", envvar="HERSTELBUS_KEYSTORE_API",
              help="Key store API base URL [env HERSTELBUS_KEYSTORE_API]. Token: env HERSTELBUS_GEMEENTE_TOKEN.")
@click.option("--verify-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE",
              help="The exchange's verify keys PEM (Ed25519, and ML-DSA-65 for hybrid epochs) [env HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE].")
@click.option("--purpose", envvar="HERSTELBUS_GEMEENTE_PURPOSE", default="herstel-kot", show_default=True,
              help="Processing activity recorded with every key release (AVG art. 30 register id or URI).")
@click.option("--group-id", help="Consumer group; default herstelbus-gemeente-GEMEENTECODE.")
@click.option("--vergeet-interval", "vergeet_interval", type=click.FloatRange(min=0), default=60.0,
              show_default=True,
              help="Seconds between fetching forget notices (erased subjects) from the key store; they are "
                   "applied to the sink and then confirmed. Also at start and, with --once, before the end.")
def consume(gemeentecode: str, key_dir: Path, sink_spec: str, ack: bool, once: bool, keystore_url: str | None,
            verify_key: Path | None, purpose: str, group_id: str | None, vergeet_interval: float) -> None:
    """Read GEMEENTECODE's events, open them, store them in the sink, commit, and (--ack) acknowledge.
    Apply the key store's forget notices to the sink and confirm them."""
    import logging
    import os

    from herstelbus.errors import HerstelbusError
    from herstelbus.logs import configure_logging
    from herstelbus.settings import get_settings

    from .bevestiging import Bevestiger
    from .sdk import GemeenteConsumer
    from .sinks import open_sink
    from .verwerking import consume as run

    configure_logging()
    logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per connection: noise for a gemeente
    check_gemeente(gemeentecode)
    sink = open_sink(sink_spec, gemeentecode)
    bootstrap = get_settings().bootstrap
    bevestiger = Bevestiger(bootstrap, gemeentecode, oin=os.environ.get("HERSTELBUS_GEMEENTE_OIN")) if ack else None
    try:
        with GemeenteConsumer.from_env(gemeentecode, key_dir=key_dir, keystore_url=keystore_url,
                                       verify_key_file=verify_key, purpose=purpose, bootstrap=bootstrap,
                                       group_id=group_id,
                                       # running: wait for a key store that is away (a deploy);
                                       # --once: give up after two minutes, with one clear line
                                       keystore_retry_s=ONCE_KEYSTORE_WAIT_S if once else None) as consumer:
            samenvatting = run(consumer, sink, bevestiger, once=once, vergeetbron=consumer.sleutelbron,
                               vergeet_interval_s=vergeet_interval)
    finally:
        sink.close()
        if bevestiger is not None:
            bevestiger.close()
    click.echo(samenvatting.regel())
    if once and samenvatting.vergeet_fout:  # events are committed; the notices stay pending for the next run
        raise HerstelbusError("forget notices not applied or not confirmed (see the log); they come again next run")


@click.command()
@click.argument("event_id")
@click.option("--gemeente", "gemeentecode", required=True, help="The acknowledging gemeente, GMxxxx.")
@click.option("--status", required=True, type=click.Choice(["VERWERKT", "GEWEIGERD"]))
@click.option("--reden", type=click.Choice(["NIET_ONZE_INWONER", "ONLEESBAAR", "ONVOLLEDIG", "ANDERS"]),
              help="Why refused: required with GEWEIGERD, not allowed otherwise.")
@click.option("--toelichting", help="Short explanation; never personal data (refused when it looks like some).")
def ack(event_id: str, gemeentecode: str, status: str, reden: str | None, toelichting: str | None) -> None:
    """Acknowledge EVENT_ID as processed (VERWERKT) or refused (GEWEIGERD) on gemeente.GMxxxx.acks.v1;
    prints the ack_id. Running it again sends the same ack (same ack_id)."""
    import os

    from herstelbus.settings import get_settings

    from .bevestiging import Bevestiger, handmatig

    check_gemeente(gemeentecode, "--gemeente")
    record = handmatig(gemeentecode, event_id, status, reden=reden, toelichting=toelichting)
    bevestiger = Bevestiger(get_settings().bootstrap, gemeentecode, oin=os.environ.get("HERSTELBUS_GEMEENTE_OIN"))
    try:
        bevestiger.stuur([(record, None)])
    finally:
        bevestiger.close()
    click.echo(record["ack_id"])
