"""``herstelbus replay``: re-deliver a gemeente's retained events (kafka-python), over the pure
decisions in ``herstelbus.core.ops.replay``.

The records are copied as they are (key, value bytes, partition; headers plus ``ce_replay: true``)
to the same topic, so the gemeente's connector opens them with the same wrapped keys from the key
store as the originals: an erased person's keys are gone, so their copies stay unreadable. The
range ends at the topic's end when the replay starts: the copies are never read again. Every real
replay, finished or not, leaves one audit record on ``herstel.audit.v1``; ``--dry-run`` writes
nothing at all.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import click

from herstelbus.kafkaclient import security
from herstelbus.core.ops import replay as r
from herstelbus.errors import HerstelbusError
from herstelbus.ops.common import WACHT_S, nu

STIL_S = 60.0  # no record for this long while the range is not read: the broker is not serving it
BEVESTIG_PER = 5000  # records sent before waiting for the broker's acks (bounds what a failure leaves open)


class ReplayFout(HerstelbusError):
    """A replay that cannot start or did not finish (the message says what was done, by counts)."""


@dataclass
class Uitkomst:
    tellingen: r.Tellingen
    bereiken: list[r.Bereik]
    geschreven: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> first, last copy
    audit_id: str | None = None  # None for a dry run


def herspeel(bootstrap: str, gemeentecode: str, van: r.Grens, tot: r.Grens | None = None, *,
             types: Iterable[str] | None = None, dry_run: bool = False, rate: float | None = None,
             actor: str, source: str, voortgang: Callable[[int], None] | None = None,
             lengte: Callable[[int], None] | None = None) -> Uitkomst:
    """Replay ``gemeentecode``'s records in ``[van, tot]``. ``lengte(n)`` is told the offsets in
    range once known, ``voortgang(n)`` each n offsets read (a progress bar)."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from herstelbus.core.topology import gemeente_events_topic

    topic = gemeente_events_topic(gemeentecode)
    filter_, tempo = r.Filter(types), r.Tempo(rate)
    audit_id = str(uuid.uuid4())
    r.controleer_audit(r.audit_record(audit_id=audit_id, at=nu(), actor=actor, gemeentecode=gemeentecode,
                                      topic=topic, tellingen=r.Tellingen(), bereiken=[]))
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 allow_auto_create_topics=False, client_id="herstelbus-replay", **security())
    except KafkaError as exc:
        raise ReplayFout(f"no broker at {bootstrap} ({type(exc).__name__})") from None
    try:
        try:
            bereiken = _bereiken(consumer, topic, van, tot)
        except KafkaError as exc:
            raise ReplayFout(f"{topic}: offsets not available ({type(exc).__name__})") from None
        if lengte is not None:
            lengte(sum(b.aantal for b in bereiken))
        uitkomst = Uitkomst(r.Tellingen(), bereiken, audit_id=None if dry_run else audit_id)
        if dry_run:
            _lees(consumer, topic, bereiken, lambda rec, keuze: None, filter_, uitkomst.tellingen, voortgang)
            return uitkomst
        _herspeel(consumer, bootstrap, topic, gemeentecode, actor, source, filter_, tempo, uitkomst, voortgang)
        return uitkomst
    finally:
        consumer.close(autocommit=False)


def _bereiken(consumer: Any, topic: str, van: r.Grens, tot: r.Grens | None) -> list[r.Bereik]:
    from kafka.structs import TopicPartition

    bestaand = consumer.partitions_for_topic(topic)
    if not bestaand:
        raise ReplayFout(f"{topic}: no such topic (herstelbus topics provision makes it)")
    tps = [TopicPartition(topic, p) for p in r.partities(van, bestaand)]
    begin, eind = consumer.beginning_offsets(tps), consumer.end_offsets(tps)

    def tijden(grens: r.Grens | None) -> dict[int, int | None] | None:
        if not isinstance(grens, r.Tijdstip):
            return None
        found = consumer.offsets_for_times({tp: grens.ms for tp in tps})
        return {tp.partition: (o.offset if o is not None else None) for tp, o in found.items()}

    return r.bereik(van, tot, begin={tp.partition: o for tp, o in begin.items()},
                    eind={tp.partition: o for tp, o in eind.items()}, van_tijd=tijden(van), tot_tijd=tijden(tot))


def _lees(consumer: Any, topic: str, bereiken: list[r.Bereik], doe: Callable[[Any, r.Keuze], None],
          filter_: r.Filter, tellingen: r.Tellingen, voortgang: Callable[[int], None] | None) -> None:
    """Read every range in offset order; ``doe(record, keuze)`` for each record in range."""
    from kafka.structs import TopicPartition

    open_ = {b.partitie: b for b in bereiken if b.aantal}
    tps = {p: TopicPartition(topic, p) for p in open_}
    consumer.assign(list(tps.values()))
    gelezen = {}
    for p, b in open_.items():
        consumer.seek(tps[p], b.van)
        gelezen[p] = b.van
    stil_sinds = time.monotonic()

    def vooruit(p: int, tot: int) -> None:
        if voortgang is not None and tot > gelezen[p]:
            voortgang(tot - gelezen[p])
        gelezen[p] = max(gelezen[p], tot)

    while open_:
        polled = consumer.poll(timeout_ms=1000)
        if any(polled.values()):
            stil_sinds = time.monotonic()
        elif time.monotonic() - stil_sinds > STIL_S:
            waar = ", ".join(f"{p}:{gelezen[p]}" for p in sorted(open_))
            raise ReplayFout(f"{topic}: no records for {STIL_S:.0f} s while reading (at {waar})")
        for tp, records in polled.items():
            b = open_.get(tp.partition)
            if b is None:
                continue
            for rec in records:
                if rec.offset >= b.tot:
                    break
                keuze = filter_.kies(rec.headers)
                tellingen.tel(keuze)
                doe(rec, keuze)
                vooruit(tp.partition, rec.offset + 1)
        for p in list(open_):
            if consumer.position(tps[p]) >= open_[p].tot:  # also past gaps (transaction markers)
                vooruit(p, open_[p].tot)
                consumer.pause(tps[p])
                del open_[p]


def _herspeel(consumer: Any, bootstrap: str, topic: str, gemeentecode: str, actor: str, source: str,
              filter_: r.Filter, tempo: r.Tempo, uitkomst: Uitkomst, voortgang: Callable[[int], None] | None) -> None:
    from kafka.errors import KafkaError

    from herstelbus.ops.common import producer as make_producer

    tellingen = uitkomst.tellingen
    producer = make_producer(bootstrap, "herstelbus-replay")
    pending: list[tuple[int, Any]] = []
    verzonden, begonnen = 0, time.monotonic()

    def bevestig() -> None:
        """Wait for the broker; count what it acknowledged. A refusal stops the replay."""
        producer.flush(timeout=WACHT_S)
        mislukt = None
        for p, future in pending:
            if future.succeeded():
                offset = future.value.offset
                tellingen.opnieuw_afgeleverd += 1
                eerste, laatste = uitkomst.geschreven.get(p, (offset, offset))
                uitkomst.geschreven[p] = (min(eerste, offset), max(laatste, offset))
            else:
                mislukt = mislukt or future.exception
        pending.clear()
        if mislukt is not None:
            raise mislukt if isinstance(mislukt, KafkaError) else KafkaError(type(mislukt).__name__)

    def stuur(rec: Any, keuze: r.Keuze) -> None:
        nonlocal verzonden
        if keuze is not r.Keuze.OPNIEUW:
            return
        wacht = tempo.wacht(verzonden, time.monotonic() - begonnen)
        if wacht:
            time.sleep(wacht)
        verzonden += 1
        # The same partition as the original: the gemeente sees its events in the same order again.
        pending.append((rec.partition, producer.send(topic, key=rec.key, value=rec.value,
                                                     headers=r.replay_headers(rec.headers), partition=rec.partition)))
        if len(pending) >= BEVESTIG_PER:
            bevestig()

    reden = fout = onverwacht = None
    try:
        _lees(consumer, topic, uitkomst.bereiken, stuur, filter_, tellingen, voortgang)
        bevestig()
    except KeyboardInterrupt:
        reden, fout = r.AFGEBROKEN, "interrupted"
    except (KafkaError, ReplayFout) as exc:
        reden, fout = r.BROKERFOUT, str(exc) if isinstance(exc, ReplayFout) else type(exc).__name__
    except Exception as exc:  # a bug: still audit what went out, then let it show
        reden, onverwacht = r.VERWERKINGSFOUT, exc
    try:
        if reden is not None:
            try:  # what the broker did take counts, even when the run stopped
                bevestig()
            except KafkaError:
                pass
        _audit(producer, source, r.audit_record(
            audit_id=str(uitkomst.audit_id), at=nu(), actor=actor, gemeentecode=gemeentecode, topic=topic,
            tellingen=tellingen, bereiken=uitkomst.bereiken, reden=reden))
    finally:
        producer.close(timeout=WACHT_S)
    if onverwacht is not None:
        raise onverwacht
    if fout is not None:
        raise ReplayFout(f"replay {gemeentecode} stopped ({fout}): {tellingen.opnieuw_afgeleverd} of "
                         f"{tellingen.gekozen} events re-delivered so far; audit {uitkomst.audit_id}")


def _audit(producer: Any, source: str, record: dict[str, Any]) -> None:
    from kafka.errors import KafkaError

    from herstelbus.core.topology import AUDIT
    from herstelbus.ops.common import send_audit

    try:
        send_audit(producer, source, [record])
    except KafkaError as exc:
        raise ReplayFout(f"replay {record['gemeentecode']}: {record['aantallen']['opnieuw_afgeleverd']} events "
                         f"re-delivered, but the audit record {record['audit_id']} was not written to {AUDIT} "
                         f"({type(exc).__name__})") from None


# -- the command --------------------------------------------------------------------------------------
@click.command("replay")
@click.option("--gemeente", "gemeentecode", required=True, metavar="GMxxxx",
              help="The gemeente whose topic (gemeente.GMxxxx.events.v1) is replayed.")
@click.option("--from", "van", required=True, metavar="TIME|OFFSET",
              help="ISO 8601 date or date-time (UTC unless it has an offset), an offset for every partition, "
                   "or P:OFFSET[,P:OFFSET...] to replay only those partitions.")
@click.option("--to", "tot", metavar="TIME|OFFSET",
              help="Last offset replayed (inclusive; same forms), or replay what was written before TIME. "
                   "Default: the end of the topic when the replay starts.")
@click.option("--type", "types", multiple=True, type=click.Choice(r.TYPES),
              help="Only events of this type (repeatable); decided on the ce_type header.")
@click.option("--dry-run", is_flag=True, help="Count what would be re-delivered; write nothing.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="N",
              help="At most N events per second.")
@click.option("--actor", help="Ops account id for the audit record (not an e-mail); default cli:<OS user>.")
def replay(gemeentecode: str, van: str, tot: str | None, types: tuple[str, ...], dry_run: bool, rate: float | None,
           actor: str | None) -> None:
    """Re-deliver GMxxxx's retained events: the same records (event ids, sealed bytes, key) again on
    its topic with header ce_replay: true, for a gemeente whose system lost data. Erased persons
    stay unreadable. An audit record goes to herstel.audit.v1."""
    from herstelbus.connectors.gemeente.cli import check_gemeente
    from herstelbus.ops.common import actor_of, exchange_source, quiet_logging
    from herstelbus.settings import get_settings

    quiet_logging()
    check_gemeente(gemeentecode, "--gemeente")
    try:
        grens_van = r.lees_grens(van, "--from")
        grens_tot = r.lees_grens(tot, "--to") if tot is not None else None
        kwargs = dict(types=types or None, dry_run=dry_run, rate=rate, actor=actor_of(actor),
                      source=exchange_source())
        if sys.stderr.isatty():
            with click.progressbar(length=1, label=f"replay {gemeentecode}", file=sys.stderr) as bar:
                def lengte(n: int) -> None:
                    bar.length = max(n, 1)

                uitkomst = herspeel(get_settings().bootstrap, gemeentecode, grens_van, grens_tot,
                                    voortgang=bar.update, lengte=lengte, **kwargs)
        else:
            uitkomst = herspeel(get_settings().bootstrap, gemeentecode, grens_van, grens_tot, **kwargs)
    except r.OngeldigeInvoer as exc:
        raise ReplayFout(str(exc)) from None
    click.echo(r.samenvatting(gemeentecode, uitkomst.tellingen, uitkomst.bereiken, dry_run=dry_run,
                              geschreven=uitkomst.geschreven))
    if uitkomst.audit_id is not None:
        click.echo(f"audit {uitkomst.audit_id} on herstel.audit.v1")


__all__ = ["ReplayFout", "Uitkomst", "herspeel", "replay"]
