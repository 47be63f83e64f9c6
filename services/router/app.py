"""``herstelbus router``: the faust app. Topics and tables are declared once, the agent reads top
to bottom, a batch at a time: plan (pure core + sealing), key rows (durable, one transaction),
outputs (acknowledged by Kafka), receipts, memory. faust acknowledges the batch after that and
commits offsets after its producer is flushed, so at-least-once; every hop is idempotent by event
id (see herstelbus.core.routing).

faust-streaming 0.15 acks a message whose agent raised, and restarts the agent: so nothing here
raises. Bad input becomes a dead letter in the pipeline; infrastructure failures are retried with
backoff on the same records (the partitions wait, nothing is skipped); a bug while planning becomes
a dead letter, a bug while sending ends the process before anything is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from collections import Counter
from typing import Any

import faust

from herstelbus import metrics
from herstelbus.core import routing as r
from herstelbus.core.contracts import source_urn
from herstelbus.core.gemeenten import gemeenten_vanaf
from herstelbus.core.topology import DEADLETTER, INGEST, ROUTER_APP_ID, STATUS, UNROUTABLE, gemeente_events_topic
from herstelbus.faustkit import (
    MAX_BACKOFF_S, Progress, make_app, retry_or_exit, table_writes_for, track_topics, watch_progress,
)
from herstelbus.keystore.errors import KeyConflict, KeystoreUnavailable, SubjectErasedWrite
from herstelbus.keystore.store import ExchangeWriter, KeyStore
from herstelbus.logs import get_logger
from herstelbus.router.pipeline import (
    GEWIST, TOPIC_TYPES, VERWERKINGSFOUT, Pipeline, Plan, Reason, decode_receipt,
)
from herstelbus.router.sealer import Sealer
from herstelbus.router.settings import ExchangeMaterial, RouterSettings
from herstelbus.router.volgorde import Wachtrij
from herstelbus.settings import Settings

LOGGER = "herstelbus.router"
log = get_logger(LOGGER)


def _members(data: bytes | None) -> frozenset[str] | None:
    return frozenset(data.decode().split(",")) if data else None


class _SeenInBatch(Exception):
    """An event id already planned in this batch: its receipt is not known yet, so the batch is
    cut before it and the event is planned again once the earlier one's receipt is stored."""


class Router:
    """The agent's work for a batch of messages; owns the pipeline and the key-store writer.

    Records wait in a ``Wachtrij`` until their turn across the three input topics (a pauzeknop
    after the overdracht UHT published before it). What may go is planned in that order (routing
    memory and duplicates within the batch are seen through a local overlay), its key rows are
    written in one transaction, its outputs and then its receipts are sent concurrently and
    awaited, and only then are the tables updated and the records acknowledged. Any exceptional
    case falls back to routing the batch one by one. One batch at a time (``lock``): the agent and
    the timer that routes records whose wait is over share the tables and the overlay.
    """

    def __init__(self, app: faust.App, settings: RouterSettings, gezien: Any, betrokken: Any) -> None:
        material = ExchangeMaterial(settings)
        self.store = KeyStore.from_settings(settings)
        self.writer = ExchangeWriter(self.store)
        self.sealer = Sealer(self.writer, material.signing_key)
        self.pipeline = Pipeline(self.sealer, material.pseudonym_secret, material.ops_public_key,
                                 source_urn(settings.oin, settings.systeem))
        self.app, self.gezien, self.betrokken = app, gezien, betrokken
        self.wachtrij = Wachtrij(app, settings.volgorde_wacht_s, settings.volgorde_max_wachtend)
        self.lock = asyncio.Lock()

    # -- a batch ----------------------------------------------------------------------------------
    async def handle_batch(self, events: list[Any]) -> None:
        """Take in a batch and route whatever may go now (the rest waits in the Wachtrij)."""
        async with self.lock:
            self.wachtrij.voeg_toe(events)
            await self._route(*self.wachtrij.klaar())

    async def route_waiting(self, progress: Progress) -> None:
        """Route records whose wait ended while no new batch came in (the timer's job)."""
        if len(self.wachtrij) and not self.lock.locked():
            async with self.lock:
                ready, forced = self.wachtrij.klaar()
                if ready:
                    with progress.batch():
                        await self._route(ready, forced)

    async def _route(self, ready: list[Any], forced: bool) -> None:
        if forced:
            log.warning("volgorde_niet_afgewacht", events=len(ready), wachtend=len(self.wachtrij))
        rest = ready
        while rest:
            rest = await self._round(rest)
        self.wachtrij.afgehandeld(ready)

    async def _round(self, events: list[Any]) -> list[Any]:
        """Route a prefix of ``events`` without repeated event ids; returns the rest."""
        started = time.perf_counter()
        planned = await self._retry_keystore(lambda: self._plan_prefix(events))
        timings = {"plan_ms": _ms_since(started)}
        if not planned:  # the first message repeats nothing in an empty batch: cannot happen
            raise AssertionError("empty round")
        rows = [k for _, _, plan in planned for k in plan.wrapped_keys]
        started = time.perf_counter()
        try:
            if rows:
                await self._retry_keystore(lambda: asyncio.to_thread(self._put_keys, rows))
        except (KeyConflict, SubjectErasedWrite):  # rare: the one-by-one path knows which record
            for event, _, _ in planned:
                await self.handle(event)
            return events[len(planned):]
        timings["keys_ms"] = _ms_since(started)
        await self._emit(planned, timings)
        return events[len(planned):]

    async def _emit(self, planned: list[tuple[Any, r.KafkaRef, Plan]], timings: dict[str, float] | None = None) -> None:
        """Outputs (acknowledged), then receipts (acknowledged), then the tables, for planned
        records whose key rows are durable. ``timings``: the earlier steps' milliseconds, logged."""
        timings = dict(timings or {})
        started = time.perf_counter()
        outs = [o for _, _, plan in planned for o in plan.outputs]
        written = iter(await self._retry("produce", lambda: self._send_all_outs(outs)))
        timings["outputs_ms"] = _ms_since(started)
        started = time.perf_counter()
        receipts = [plan.receipt([next(written) for _ in plan.outputs]) for _, _, plan in planned]
        receipt_outs = [self.pipeline.receipt_out(receipt) for receipt in receipts]
        await self._retry("receipt", lambda: self._send_all_outs(receipt_outs))
        timings["receipts_ms"] = _ms_since(started)
        per_event = _log_each_event()
        for (event, bron, plan), receipt, receipt_out in zip(planned, receipts, receipt_outs, strict=True):
            self._remember(event, plan, receipt_out)
            if per_event:
                _log_routed(bron, plan, receipt)
        log.info("batch_routed", events=len(planned), **Counter(rc["status"] for rc in receipts),
                 first=_where(planned[0][1]), last=_where(planned[-1][1]), **timings)
        metrics.routed(planned, receipts, outs)

    def _plan_prefix(self, events: list[Any]) -> list[tuple[Any, r.KafkaRef, Plan]]:
        planned: list[tuple[Any, r.KafkaRef, Plan]] = []
        seen: set[str] = set()
        memory: dict[str, frozenset[str]] = {}  # this batch's betrokken updates, not yet in the table

        def gezien(key: str) -> Any:
            if key in seen:
                raise _SeenInBatch
            return decode_receipt(self.gezien.get(key.encode()))

        def betrokken(key: str) -> frozenset[str] | None:
            return memory[key] if key in memory else _members(self.betrokken.get(key.encode()))

        for event in events:
            msg = event.message
            bron, headers = _bron(msg), _headers(msg)
            try:
                plan = self._plan_or_bug(bron, msg, headers, gezien, betrokken)
            except _SeenInBatch:
                break
            planned.append((event, bron, plan))
            if plan.event_id is not None:
                seen.add(r.idempotency_key(plan.event_id))
            memory.update(plan.memory)
        return planned

    # -- one message (the fallback) ---------------------------------------------------------------
    async def handle(self, event: Any) -> None:
        msg = event.message
        bron, headers = _bron(msg), _headers(msg)
        await self._emit([(event, bron, await self._durable_plan(bron, msg, headers))])

    def _plan_or_bug(self, bron: r.KafkaRef, msg: Any, headers: list, gezien: Any, betrokken: Any) -> Plan:
        try:
            return self.pipeline.plan(bron, msg.key, msg.value, headers, gezien=gezien, betrokken=betrokken)
        except (KeystoreUnavailable, _SeenInBatch):
            raise
        except Exception as exc:  # a bug: keep the record for ops, never drop it, never crash
            log.error("router_bug", error=type(exc).__name__, bron=_where(bron))
            return self.pipeline.dead_letter(TOPIC_TYPES[bron.topic], None, [Reason(VERWERKINGSFOUT)], bron,
                                             msg.key, msg.value, headers, self.pipeline.clock())

    async def _durable_plan(self, bron: r.KafkaRef, msg: Any, headers: list) -> Plan:
        """A plan whose key-store rows are written: what the outputs need to be openable."""
        def table_gezien(k: str) -> Any:
            return decode_receipt(self.gezien.get(k.encode()))

        def table_betrokken(k: str) -> frozenset[str] | None:
            return _members(self.betrokken.get(k.encode()))

        while True:
            plan = await self._retry_keystore(
                lambda: self._plan_or_bug(bron, msg, headers, table_gezien, table_betrokken))
            try:
                if plan.wrapped_keys:
                    await self._retry_keystore(lambda: asyncio.to_thread(self._put_keys, plan.wrapped_keys))
                return plan
            except KeyConflict:  # a retry sealed this event again: new epochs, new key ids
                self.sealer.renew(k.gemeentecode for k in plan.wrapped_keys)
            except SubjectErasedWrite:
                return self.pipeline.dead_letter(plan.record_type, plan.event_id, [Reason(GEWIST)], bron,
                                                 msg.key, msg.value, headers, self.pipeline.clock())

    # -- effects ----------------------------------------------------------------------------------
    def _put_keys(self, rows: list) -> Any:
        with metrics.keystore_call("put_wrapped_keys"):
            return self.writer.put_wrapped_keys(rows)

    def _remember(self, event: Any, plan: Plan, receipt_out: Any) -> None:
        with table_writes_for(event):
            if plan.remember_receipt and plan.event_id is not None:
                self.gezien[r.idempotency_key(plan.event_id).encode()] = receipt_out.value  # encoded once
            for key, members in plan.memory.items():
                self.betrokken[key.encode()] = ",".join(sorted(members)).encode()

    async def _send_all_outs(self, outs: list) -> list[r.KafkaRef]:
        futures = [await self.app.producer.send(o.topic, o.key, o.value, None, None, o.headers) for o in outs]
        metas = [await f for f in futures]  # acknowledged by the brokers (acks=all)
        return [r.KafkaRef(m.topic, m.partition, m.offset) for m in metas]

    async def _retry_keystore(self, step: Any) -> Any:
        """Retry ``step`` while the key store is unavailable (nothing is skipped meanwhile)."""
        delay = 0.5
        while True:
            try:
                result = step()
                return await result if asyncio.iscoroutine(result) else result
            except KeystoreUnavailable:
                log.warning("keystore_unavailable_retrying", retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _retry(self, what: str, step: Any) -> Any:
        return await retry_or_exit(what, step)


def _bron(msg: Any) -> r.KafkaRef:
    return r.KafkaRef(msg.topic, msg.partition, msg.offset)


def _headers(msg: Any) -> list:
    return list(msg.headers.items()) if isinstance(msg.headers, dict) else list(msg.headers or [])


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _where(bron: r.KafkaRef) -> str:
    return f"{bron.topic}/{bron.partition}/{bron.offset}"


def _log_each_event() -> bool:
    # One line per event costs as much as sealing it; receipts are the record of every event, so
    # per-event lines are for debugging (HERSTELBUS_LOG_LEVEL=debug) and a batch gets one line.
    return logging.getLogger(LOGGER).isEnabledFor(logging.DEBUG)


def _log_routed(bron: r.KafkaRef, plan: Plan, receipt: Any) -> None:
    log.debug("routed", event_id=plan.event_id, status=receipt["status"], reden=receipt.get("reden"),
             bron=_where(bron), gemeenten=[d["gemeentecode"] for d in receipt.get("doelen", [])])


def create_app(settings: Settings, router_settings: RouterSettings | None = None) -> faust.App:
    router_settings = router_settings or RouterSettings()
    # Raw bytes everywhere (tables too): the contracts encode, faust only carries.
    app = make_app(ROUTER_APP_ID, settings, strict_topics=INGEST, topic_partitions=settings.ingest_partitions,
                   key_serializer="raw", value_serializer="raw")
    ingest = app.topic(*INGEST, key_serializer="raw", value_serializer="raw")
    # key_type/value_type bytes: faust then (de)serialises the changelog as raw bytes; without it
    # the tables write one format and recover with JSON, and a restart never finishes recovery.
    gezien = app.Table("gezien", default=None, partitions=settings.ingest_partitions,
                       key_type=bytes, value_type=bytes)
    betrokken = app.Table("betrokken", default=None, partitions=settings.ingest_partitions,
                          key_type=bytes, value_type=bytes)
    state: dict[str, Router] = {}
    progress = Progress()
    watch_progress(app, INGEST, progress, settings.stall_after_s)
    metrics.serve(app, "router", INGEST, progress, stall_after_s=settings.stall_after_s,
                  host=router_settings.metrics_host, port=router_settings.metrics_port)

    @app.timer(0.2)
    async def route_waiting() -> None:
        if "router" in state:
            await state["router"].route_waiting(progress)

    @app.on_partitions_revoked.connect
    async def forget_waiting(app: faust.App, revoked: set, **_: Any) -> None:
        if "router" in state and (dropped := state["router"].wachtrij.vergeet(revoked)):
            log.info("wachtend_vergeten", events=dropped)  # the new owner reads them again

    @app.agent(ingest)
    async def route(stream: faust.StreamT) -> None:
        router = state.get("router") or state.setdefault("router", Router(app, router_settings, gezien, betrokken))
        await track_topics(app, [STATUS, DEADLETTER, UNROUTABLE,
                                 *(gemeente_events_topic(g.code) for g in gemeenten_vanaf(date.today()))])
        # take_events acknowledges a batch only after this loop body has routed all of it.
        async for events in stream.take_events(router_settings.batch_size,
                                               within=router_settings.batch_wait_ms / 1000):
            with progress.batch():
                await router.handle_batch(list(events))

    return app
