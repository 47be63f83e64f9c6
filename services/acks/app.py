"""``herstelbus acks``: the faust app of the acknowledgement relay.

Agents: ROUTED receipts on uht.status.v1 become state rows; gemeente acks (every
``gemeente.<GM>.acks.v1``) are judged by the core and relayed; a timer sends OVERDUE notices. At
least once: each message's outputs are acknowledged by the brokers, then the state is stored,
then faust acknowledges the message; a crash in between emits the same records again (derived ids).

As the router: nothing raises out of an agent (faust would ack the message). Bad acks become dead
letters, sealed for ops (an ack's toelichting may hold personal data); broker and database
failures are retried with backoff; a bug while sending ends the process before anything is acked.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

import faust
from sqlalchemy.exc import DBAPIError

from herstelbus import metrics
from herstelbus.acks.settings import AcksSettings
from herstelbus.acks.state import AcksStore
from herstelbus.core import acks as a
from herstelbus.core import contracts
from herstelbus.core.contracts import ContractError
from herstelbus.core.privacy.keys import load_gemeente_public_key
from herstelbus.core.privacy.ops import frame_record, seal_for_ops
from herstelbus.core.routing import KafkaRef, deadletter_record
from herstelbus.core.gemeenten import gemeenten_vanaf
from herstelbus.core.topology import AUDIT, DEADLETTER, STATUS, UNROUTABLE, gemeente_acks_topic
from herstelbus.errors import HerstelbusError
from herstelbus.core.routing.volgorde import voorbij
from herstelbus.faustkit import TRANSIENT, Progress, make_app, partition_stand, retry_or_exit, watch_progress
from herstelbus.logs import get_logger
from herstelbus.settings import Settings

APP_ID = "herstelbus-acks"
_TOPIC_GEMEENTE = re.compile(r"gemeente\.(GM[0-9]{4})\.acks\.v1")
VERWERKINGSFOUT = "VERWERKINGSFOUT"
VERKEERD_TYPE = "GEEN_ONTVANGSTBEVESTIGING"
log = get_logger("herstelbus.acks")

Out = tuple[str, bytes, bytes, list]  # topic, key, value, headers


class AcksConfigError(HerstelbusError):
    pass


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _headers(msg: Any) -> list:
    return list(msg.headers.items()) if isinstance(msg.headers, dict) else list(msg.headers or [])


class Relay:
    def __init__(self, app: faust.App, settings: AcksSettings, store: AcksStore) -> None:
        self.app, self.settings, self.store = app, settings, store
        self.termijnen = a.parse_termijnen(settings.acks_termijnen)
        self.source = contracts.source_urn(settings.oin, settings.systeem)
        if settings.ops_public_key_file is None:
            raise AcksConfigError("ops public key not configured: set HERSTELBUS_OPS_PUBLIC_KEY_FILE")
        self.ops_key = load_gemeente_public_key(settings.ops_public_key_file.read_bytes())
        self.status_handled: dict[Any, tuple[int, int, float]] = {}  # tp -> (offset, ts ms, when)

    def _out(self, topic: str, record_type: str, key: str, record: dict) -> Out:
        id_field = {"statusbericht": "status_id", "deadletter": "deadletter_id", "audit": "audit_id"}[record_type]
        return (topic, key.encode(), contracts.encode(record_type, record),
                contracts.cloudevent_headers(record_type, id=str(record[id_field]), source=self.source,
                                             time=record["at"]))

    # -- uht.status.v1 ---------------------------------------------------------------------------
    async def on_status(self, msg: Any) -> None:
        await self._on_status(msg)
        # Handled: an ack published after this receipt no longer needs to wait for it (_lookup).
        self.status_handled[msg.tp] = (msg.offset, int(msg.timestamp * 1000), time.monotonic())

    async def _on_status(self, msg: Any) -> None:
        try:
            record_type, receipt = contracts.decode(msg.value)
        except ContractError:
            log.warning("status_unreadable", bron=f"{msg.topic}/{msg.partition}/{msg.offset}")
            return  # not ours to dead-letter: the router's output
        if record_type != "statusbericht":
            return
        doelen = a.doelen_uit(receipt)  # [] for our own relays and every other status
        if doelen:
            new = await self._retry("state", lambda: asyncio.to_thread(self.store.put_routed, doelen))
            log.debug("routed_seen", event_id=doelen[0].event_id, doelen=len(doelen), nieuw=new)

    # -- gemeente.<GM>.acks.v1 -------------------------------------------------------------------
    async def on_ack(self, msg: Any) -> None:
        bron = KafkaRef(msg.topic, msg.partition, msg.offset)
        now = _now()
        try:
            outs, doel, besluit = await self._judge(msg, bron, now)
        except Exception as exc:  # a bug: keep the ack for ops, never drop it
            log.error("acks_bug", error=type(exc).__name__, bron=_where(bron))
            outs, doel, besluit = [self._dead_letter(msg, bron, [(VERWERKINGSFOUT, "")], now)], None, None
        await self._retry("produce", lambda: self._send(outs))
        if doel is not None:
            await self._retry("state", lambda: asyncio.to_thread(self.store.save, doel))
        metrics.ack_relayed(msg.timestamp)
        if besluit is not None:
            log.info("ack", soort=besluit.soort, reden=besluit.reden, bron=_where(bron),
                     status=besluit.status and besluit.status["status"],
                     event_id=besluit.audit["event_id"] if besluit.audit else doel and doel.event_id,
                     gemeentecode=doel.gemeentecode if doel else None)

    async def _judge(self, msg: Any, bron: KafkaRef, now: datetime) -> tuple[list[Out], a.Doel | None, Any]:
        try:
            record_type, ack = contracts.decode(msg.value)
        except ContractError as exc:
            return [self._dead_letter(msg, bron, [exc], now)], None, None
        if record_type != "ontvangstbevestiging":
            return [self._dead_letter(msg, bron, [(VERKEERD_TYPE, "")], now, event_type=record_type)], None, None
        errors = contracts.validate(record_type, ack, now=now)
        if errors:
            return [self._dead_letter(msg, bron, errors, now, event_id=ack.get("event_id"),
                                      event_type=record_type)], None, None
        topic_gemeente = _TOPIC_GEMEENTE.fullmatch(msg.topic).group(1)
        doel = await self._lookup(str(ack["event_id"]), ack["gemeentecode"], int(msg.timestamp * 1000))
        besluit = a.beoordeel(ack, doel, topic_gemeente=topic_gemeente, bron=bron, topic=msg.topic, now=now)
        metrics.ack_judged(ack["status"], besluit.soort, besluit.unroutable and besluit.unroutable["reden"])
        outs = []
        if besluit.status is not None:
            outs.append(self._out(STATUS, "statusbericht", str(besluit.status["event_id"]), besluit.status))
        if besluit.unroutable is not None:
            outs.append(self._out(UNROUTABLE, "deadletter", str(besluit.unroutable["event_id"]), besluit.unroutable))
        if besluit.audit is not None:
            outs.append(self._out(AUDIT, "audit", str(besluit.audit["audit_id"]), besluit.audit))
        return outs, besluit.doel if besluit.soort == "geaccepteerd" else None, besluit

    async def _lookup(self, event_id: str, gemeentecode: str, written_ms: int) -> a.Doel | None:
        """The ROUTED receipt is read from another topic and may lag the ack (always after a restart
        onto a backlog: the acks partitions may be read before the status backlog). The ack waits
        until every status partition this worker owns is known to hold nothing unhandled that was
        published before the ack (core.routing.volgorde.voorbij), at most ``acks_grace_s`` for a
        partition that delivers nothing; only then is a missing receipt a refusal."""
        arrived = time.monotonic()
        while True:
            doel = await self._retry("state", lambda: asyncio.to_thread(self.store.get, event_id, gemeentecode))
            if doel is not None or self._receipts_handled_until(written_ms, arrived):
                return doel
            await asyncio.sleep(0.1)

    def _receipts_handled_until(self, ts_ms: int, arrived: float) -> bool:
        consumer, now = self.app.consumer, time.monotonic()
        return all(voorbij(partition_stand(consumer, tp, self.status_handled.get(tp)), ts_ms, arrived, now,
                           self.settings.acks_grace_s)
                   for tp in consumer.assignment() if tp.topic == STATUS)

    def _dead_letter(self, msg: Any, bron: KafkaRef, fouten: list, now: datetime, *, event_id: Any = None,
                     event_type: str | None = None) -> Out:
        draft = deadletter_record(fouten, bron=bron, origineel=b"", sleutel_id="-", at=now, event_id=event_id,
                                  event_type=event_type, component=a.COMPONENT)
        origineel, key_id = seal_for_ops(frame_record(msg.key, msg.value, _headers(msg)), self.ops_key,
                                         draft["deadletter_id"])
        letter = {**draft, "origineel": origineel, "sleutel_id": key_id}
        log.warning("ack_dead_letter", reden=letter["reden"], bron=_where(bron))
        metrics.ack_dead_letter(letter["reden"])
        return self._out(DEADLETTER, "deadletter", draft["deadletter_id"], letter)

    # -- deadlines -------------------------------------------------------------------------------
    async def check_overdue(self) -> None:
        open_ = await self._retry("state", lambda: asyncio.to_thread(self.store.open_doelen))
        late = a.due(open_, _now(), self.termijnen)
        if not late:
            return
        await self._retry("produce", lambda: self._send(
            [self._out(STATUS, "statusbericht", o.doel.event_id, o.status) for o in late]))
        for o in late:  # notified only once the notices are acknowledged by the brokers
            gemeld = replace(o.doel, gemeld=o.doel.gemeld | {o.termijn.status})
            await self._retry("state", lambda g=gemeld: asyncio.to_thread(self.store.save, g))
        log.info("overdue_notified", aantal=len(late))
        metrics.overdue(o.status["reden"] for o in late)

    # -- effects ---------------------------------------------------------------------------------
    async def _send(self, outs: list[Out]) -> None:
        futures = [await self.app.producer.send(t, k, v, None, None, h) for t, k, v, h in outs]
        for f in futures:
            await f

    async def _retry(self, what: str, step: Any) -> Any:
        return await retry_or_exit(what, step, TRANSIENT + (DBAPIError,))


def _where(bron: KafkaRef) -> str:
    return f"{bron.topic}/{bron.partition}/{bron.offset}"


def create_app(settings: Settings, acks_settings: AcksSettings | None = None) -> faust.App:
    acks_settings = acks_settings or AcksSettings()
    # An explicit list: faust-streaming 0.15 never subscribes a topic pattern (tried: the consumer
    # joins with the other topics only). Gemeenten that exist today or later; a restart picks up new ones.
    ack_topics = [gemeente_acks_topic(g.code) for g in gemeenten_vanaf(date.today())]
    app = make_app(APP_ID, settings, strict_topics=[STATUS, *ack_topics], key_serializer="raw", value_serializer="raw")
    status = app.topic(STATUS, key_serializer="raw", value_serializer="raw")
    acks = app.topic(*ack_topics, key_serializer="raw", value_serializer="raw")
    relay = Relay(app, acks_settings, AcksStore.from_settings(acks_settings))  # fails closed at start
    progress = Progress()
    watch_progress(app, [STATUS, *ack_topics], progress, settings.stall_after_s)
    metrics.serve(app, "acks", [STATUS, *ack_topics], progress, stall_after_s=settings.stall_after_s,
                  host=acks_settings.metrics_host, port=acks_settings.metrics_port)

    @app.agent(status)
    async def receipts(stream: faust.StreamT) -> None:
        async for event in stream.events():
            with progress.batch():
                await relay.on_status(event.message)

    @app.agent(acks)
    async def bevestigingen(stream: faust.StreamT) -> None:
        async for event in stream.events():
            with progress.batch():
                await relay.on_ack(event.message)

    @app.timer(acks_settings.acks_overdue_interval_s)
    async def overdue() -> None:
        try:
            await relay.check_overdue()
        except Exception as exc:  # a timer that raises stops for good; the next tick tries again
            log.error("overdue_failed", error=type(exc).__name__)

    return app
