"""``herstelbus deadletter list | show ID | redrive``: the Kafka side of ``herstelbus.core.ops.deadletter``.

Reads without a consumer group: herstel.deadletter.v1 (or herstel.unroutable.v1), and for a redrive
also herstel.audit.v1 (what earlier runs sent) and uht.status.v1 (what was routed since). Prints
ids, codes, positions and sizes only; a sealed original is opened (with the ops private key) only
to send it back, or by ``show --open``, which describes its shape and never prints a value.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from kafka import KafkaConsumer

from herstelbus.core import contracts
from herstelbus.core.ops import deadletter as d
from herstelbus.core.ops.replay import OngeldigeInvoer, controleer_audit
from herstelbus.core.privacy import PrivacyError, PseudonymSecret
from herstelbus.core.topology import DEADLETTER, INGEST, STATUS, UNROUTABLE
from herstelbus.keystore.errors import KeystoreUnavailable
from herstelbus.keystore.settings import KeystoreSettings
from herstelbus.keystore.store import KeyStore
from herstelbus.ops.common import (
    LEES_S, OpsFout, Uitkomst, Zending, actor_of, exchange_source, ms, nu, ops_private_key, partitions,
    quiet_logging, read_kopieen, read_topic, reading, ref_of, send_again, since_option,
)
from herstelbus.settings import get_settings

TOPICS = {"deadletter": DEADLETTER, "unroutable": UNROUTABLE}


def read_letters(consumer: KafkaConsumer, topic: str, deadline: float) -> tuple[list[d.DeadLetter], int]:
    """(each dead letter once, records that were no dead letter)."""
    letters: list[d.DeadLetter] = []
    unreadable = 0

    def handle(message: Any) -> None:
        nonlocal unreadable
        try:
            record_type, record = contracts.decode(message.value or b"")
        except contracts.ContractError:
            record_type = record = None
        letter = d.uit_record(record, ref_of(message)) if record_type == "deadletter" else None
        if letter is None:
            unreadable += 1
        else:
            letters.append(letter)

    read_topic(consumer, topic, handle, deadline)
    return d.verzamel(letters), unreadable


def read_stand(consumer: KafkaConsumer, deadline: float) -> d.Stand:
    """What earlier runs sent (audit), then what the router answered since (receipts)."""
    from herstelbus.ops.reconcile import read_receipts

    kopieen = read_kopieen(consumer, deadline)
    receipts, _, _ = read_receipts(consumer, STATUS, deadline)
    ingest = [tp for topic in INGEST for tp in partitions(consumer, topic)]
    log_start = {(tp.topic, tp.partition): o for tp, o in consumer.beginning_offsets(ingest).items()}
    return d.stand(receipts, kopieen, log_start)


def open_all(besluiten: Sequence[d.Besluit], actie: str, key: Any) -> list[Zending]:
    """Every original to send, opened before anything is sent: a key that does not open one stops
    the run with nothing sent."""
    zendingen = []
    for b in besluiten:
        if b.opnieuw:
            try:
                k, value, headers = d.open_origineel(b.kandidaat.deadletter, key)
            except d.NietTeOpenen as exc:
                raise OpsFout(f"{exc}; nothing was sent") from None
            zendingen.append(Zending(b, k, value, d.kopie_headers(actie, headers, b.kandidaat.herkomst)))
    return zendingen


@dataclass
class Run:
    tellingen: d.Tellingen
    besluiten: list[d.Besluit]
    uitkomst: Uitkomst


def without_erased(besluiten: list[d.Besluit], zendingen: Sequence[Zending]) -> tuple[list[d.Besluit], list[Zending]]:
    """An erased person's plaintext never goes out again, whatever it was held for: every original
    about to be sent is checked against the key store's erasures (fail closed: without the
    pseudonym secret and the key store nothing is sent)."""
    if not zendingen:
        return besluiten, list(zendingen)
    settings = KeystoreSettings()
    # Both explicitly: the default URL would open (and create) an empty SQLite store that lists
    # no erasures at all, which would let an erased person's data out.
    if settings.pseudonym_key_file is None or not settings.keystore_url.get_secret_value():
        raise OpsFout("checking erasures needs HERSTELBUS_PSEUDONYM_KEY_FILE and HERSTELBUS_KEYSTORE_URL "
                      "(as the router has them); nothing was sent")
    try:
        secret = PseudonymSecret.from_file(settings.pseudonym_key_file)
    except PrivacyError as exc:
        raise OpsFout(f"pseudonym secret: {exc}; nothing was sent") from None
    subjects = {z.besluit.kandidaat.herkomst: d.subject_van(z.value, secret) for z in zendingen}
    store = KeyStore.from_settings(settings)
    try:
        erased = store.erased_subjects({s for s in subjects.values() if s})
    except KeystoreUnavailable as exc:
        raise OpsFout(f"{exc}: erasures not checked, nothing was sent") from None
    finally:
        store.close()
    gewist = {h for h, s in subjects.items() if s in erased}
    return ([d.gewist_overslaan(b) if b.kandidaat.herkomst in gewist else b for b in besluiten],
            [z for z in zendingen if z.besluit.kandidaat.herkomst not in gewist])


def check_actor(actie: str, actor: str) -> None:
    """Before anything is read: the audit contract refuses an e-mail address as actor."""
    try:
        controleer_audit(d.run_audit(audit_id=str(uuid.uuid4()), at=nu(), actor=actor, actie=actie, topic=None,
                                     tellingen=d.Tellingen()))
    except OngeldigeInvoer as exc:
        raise OpsFout(str(exc)) from None


def send_letters(bootstrap: str, actie: str, topic: str,
                 kies: Callable[[list[d.DeadLetter], d.Stand], list[d.Besluit]], *, ids: frozenset[str] = frozenset(),
                 dry_run: bool, actor: str, timeout_s: float = LEES_S) -> Run:
    """Read ``topic`` and the stand, decide (``kies``), open the originals, send them (unless a dry run)."""
    check_actor(actie, actor)
    key = ops_private_key()  # a dry run opens too: it proves every original opens before one is sent
    with reading(bootstrap, f"herstelbus-{actie}", timeout_s) as (c, deadline):
        st = read_stand(c, deadline)
        letters, _ = read_letters(c, topic, deadline)
    missing = d.Selectie(ids).ontbrekend(letters)
    if missing:
        raise OpsFout(f"no dead letter {', '.join(missing)} on {topic}; nothing was sent")
    besluiten = kies(letters, st)
    return finish(bootstrap, actie, len(letters), besluiten, open_all(besluiten, actie, key), dry_run=dry_run,
                  actor=actor, topic=topic)


def finish(bootstrap: str, actie: str, gelezen: int, besluiten: list[d.Besluit], zendingen: Sequence[Zending], *,
           dry_run: bool, actor: str, topic: str | None) -> Run:
    """Send what was decided, with its audit records; a dry run counts only."""
    besluiten, zendingen = without_erased(besluiten, zendingen)
    tellingen = d.Tellingen.van(gelezen, besluiten)
    if dry_run:
        tellingen.opnieuw = len(zendingen)
        return Run(tellingen, besluiten, Uitkomst())
    return Run(tellingen, besluiten, send_again(bootstrap, actie, zendingen, tellingen, actor=actor,
                                                source=exchange_source(), topic=topic))


def echo_run(actie: str, run: Run, dry_run: bool) -> None:
    click.echo(d.samenvatting(actie, run.tellingen, run.besluiten, run.uitkomst.geschreven, dry_run=dry_run))
    if run.uitkomst.audit_id is not None:
        click.echo(f"audit {run.uitkomst.audit_id} on herstel.audit.v1")


# -- the commands --------------------------------------------------------------------------------------
def _code(_ctx: Any, _param: Any, value: str | None) -> str | None:
    if value is not None and not d.is_code(value):
        raise click.BadParameter("expected a reason code (upper case, digits and _), e.g. SCHEMA_ONBEKEND")
    return value


reason_option = click.option("--reason", metavar="CODE", callback=_code,
                             help="Only records with this reason code (the main one or any fout's).")
timeout_option = click.option("--timeout", default=LEES_S, show_default=True,
                              help="Seconds allowed for reading the topics.")
actor_option = click.option("--actor", help="Ops account id for the audit records (not an e-mail); "
                                            "default cli:<OS user>.")
_topic_option = click.option("--topic", "welk", type=click.Choice(sorted(TOPICS)), default="deadletter",
                             show_default=True, help="herstel.deadletter.v1, or the held events on herstel.unroutable.v1.")
_component_option = click.option("--component", type=click.Choice(d.COMPONENTS),
                                 help="Only what this worker refused.")


def _read(topic: str, timeout: float) -> tuple[list[d.DeadLetter], int]:
    with reading(get_settings().bootstrap, "herstelbus-deadletter", timeout) as (c, deadline):
        return read_letters(c, topic, deadline)


@click.group("deadletter")
def deadletter() -> None:
    """Dead letters (herstel.deadletter.v1): list, show, re-drive after a fix. Ids, reason codes,
    positions and sizes only: never the personal data in a sealed original."""


@deadletter.command("list")
@reason_option
@_component_option
@since_option("Only dead letters written at/after TIME (ISO 8601; without an offset: UTC).")
@_topic_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object for machines instead of a table.")
@timeout_option
def list_(reason: str | None, component: str | None, since: datetime | None, welk: str, as_json: bool,
          timeout: float) -> None:
    """List dead letters: id, when, component, reason codes, source topic/partition/offset, event
    type and id, size of the sealed original."""
    quiet_logging()
    topic = TOPICS[welk]
    letters, unreadable = _read(topic, timeout)
    shown = [dl for dl in letters if d.Selectie(reden=reason, component=component, since_ms=ms(since)).past(dl)]
    if as_json:
        click.echo(json.dumps({"topic": topic, "aantal": len(shown), "onleesbaar": unreadable,
                               "deadletters": [d.rij(dl) for dl in shown]}, indent=2))
        return
    if shown:
        click.echo(d.tabel(shown))
    click.echo(f"{len(shown)} of {len(letters)} on {topic}" + (f"; {unreadable} unreadable records" if unreadable else ""))


@deadletter.command("show")
@click.argument("deadletter_id", metavar="ID")
@_topic_option
@click.option("--open", "openen", is_flag=True,
              help="Open the sealed original with the ops private key (HERSTELBUS_OPS_PRIVATE_KEY_FILE) and "
                   "describe it: sizes, header names, event id, what the contracts say of it now. Never a value.")
@timeout_option
def show(deadletter_id: str, welk: str, openen: bool, timeout: float) -> None:
    """Show one dead letter: its fields, the fouten' codes and paths and its melding (unless the
    contract refuses them as read); the original only by its size."""
    quiet_logging()
    try:
        (wanted,) = d.lees_ids([deadletter_id])
    except OngeldigeInvoer as exc:
        raise OpsFout(str(exc)) from None
    topic = TOPICS[welk]
    key = ops_private_key() if openen else None
    letters, _ = _read(topic, timeout)
    found = [dl for dl in letters if dl.deadletter_id == wanted]
    if not found:
        raise OpsFout(f"no dead letter {wanted} on {topic}")
    text = d.details(found[0])
    if key is not None and found[0].origineel:  # opened first: a wrong key is the one line printed
        try:
            text += "\n" + d.beschrijf(d.open_origineel(found[0], key), nu())
        except d.NietTeOpenen as exc:
            raise OpsFout(str(exc)) from None
    elif key is not None:
        text += "\norigineel      none kept (the acks relay never sees one)"
    click.echo(text)


@deadletter.command("redrive")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@reason_option
@_component_option
@since_option("Only dead letters written at/after TIME (ISO 8601; without an offset: UTC).")
@click.option("--all", "alles", is_flag=True, help="Every dead letter (without ID, --reason or --all nothing starts).")
@click.option("--dry-run", is_flag=True, help="Open and decide, send nothing, write no audit record.")
@actor_option
@timeout_option
def redrive(ids: tuple[str, ...], reason: str | None, component: str | None, since: datetime | None, alles: bool,
            dry_run: bool, actor: str | None, timeout: float) -> None:
    """Send dead-lettered originals again to the topic and partition they came from (same key, value
    and headers, plus herstel_redrive: <id>), after a fix: a contract version released, a router
    or acks bug fixed. The worker judges each as new input and gives it its own receipt. Never
    twice (herstel.audit.v1 knows), never an erased person's, never an event routed since. Needs
    HERSTELBUS_OPS_PRIVATE_KEY_FILE."""
    quiet_logging()
    if not (ids or reason or alles):
        raise OpsFout("redrive: name dead letter ids, a --reason, or --all")
    try:
        selectie = d.Selectie(d.lees_ids(ids), reason, component, ms(since))
    except OngeldigeInvoer as exc:
        raise OpsFout(str(exc)) from None
    run = send_letters(get_settings().bootstrap, d.REDRIVE, DEADLETTER,
                       lambda letters, st: d.kies_redrive(letters, selectie, st), ids=selectie.ids,
                       dry_run=dry_run, actor=actor_of(actor), timeout_s=timeout)
    echo_run(d.REDRIVE, run, dry_run)


__all__ = ["Run", "check_actor", "deadletter", "echo_run", "finish", "open_all", "read_letters", "read_stand", "send_letters"]
