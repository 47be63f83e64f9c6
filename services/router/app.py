"""``herstelbus router``: the faust app. Topics and tables are declared once, the agent reads top
to bottom: plan (pure core + sealing), key rows (durable), outputs (acknowledged by Kafka),
receipt, memory. Offsets are committed by faust after its producer is flushed, so at-least-once;
every hop is idempotent by event id (see herstelbus.core.routing).

faust-streaming 0.15 acks a message whose agent raised, and restarts the agent: so nothing here
raises. Bad input becomes a dead letter in the pipeline; infrastructure failures are retried with
backoff on the same record (the partition waits, nothing is skipped); a bug becomes a dead letter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiokafka.errors import KafkaError

from herstelbus.core import routing as r
from herstelbus.core.contracts import source_urn
from herstelbus.core.topology import INGEST, ROUTER_APP_ID
from herstelbus.faustkit import make_app
from herstelbus.keystore.errors import KeyConflict, KeystoreUnavailable, SubjectErasedWrite
from herstelbus.keystore.store import ExchangeWriter, KeyStore
from herstelbus.logs import get_logger
from herstelbus.router.pipeline import (
    GEWIST, TOPIC_TYPES, VERWERKINGSFOUT, Pipeline, Plan, Reason, decode_receipt,
)
from herstelbus.router.sealer import Sealer
from herstelbus.router.settings import ExchangeMaterial, RouterSettings
from herstelbus.settings import Settings

log = get_logger("herstelbus.router")
MAX_BACKOFF_S = 30.0


def _members(data: bytes | None) -> frozenset[str] | None:
    return frozenset(data.decode().split(",")) if data else None


class Router:
    """The agent's work for one message; owns the pipeline and the key-store writer."""

    def __init__(self, app: faust.App, settings: RouterSettings, gezien: Any, betrokken: Any) -> None:
        material = ExchangeMaterial(settings)
        self.store = KeyStore.from_settings(settings)
        self.writer = ExchangeWriter(self.store)
        self.sealer = Sealer(self.writer, material.signing_key)
        self.pipeline = Pipeline(self.sealer, material.pseudonym_secret, material.ops_public_key,
                                 source_urn(settings.oin, settings.systeem))
        self.app, self.gezien, self.betrokken = app, gezien, betrokken

    def _plan(self, bron: r.KafkaRef, msg: Any, headers: list) -> Plan:
        return self.pipeline.plan(
            bron, msg.key, msg.value, headers,
            gezien=lambda k: decode_receipt(self.gezien.get(k.encode())),
            betrokken=lambda k: _members(self.betrokken.get(k.encode())),
        )

    async def handle(self, msg: Any) -> None:
        bron = r.KafkaRef(msg.topic, msg.partition, msg.offset)
        headers = list(msg.headers.items()) if isinstance(msg.headers, dict) else list(msg.headers or [])
        plan = await self._durable_plan(bron, msg, headers)
        written = await self._retry("produce", lambda: self._send_all(plan))
        receipt = plan.receipt(written)
        receipt_out = self.pipeline.receipt_out(receipt)
        await self._retry("receipt", lambda: self._send_all_outs([receipt_out]))
        if plan.remember_receipt and plan.event_id is not None:
            self.gezien[r.idempotency_key(plan.event_id).encode()] = receipt_out.value  # encoded once
        for key, members in plan.memory.items():
            self.betrokken[key.encode()] = ",".join(sorted(members)).encode()
        log.info("routed", event_id=plan.event_id, status=receipt["status"], reden=receipt.get("reden"),
                 bron=f"{bron.topic}/{bron.partition}/{bron.offset}",
                 gemeenten=[d["gemeentecode"] for d in receipt.get("doelen", [])])

    async def _durable_plan(self, bron: r.KafkaRef, msg: Any, headers: list) -> Plan:
        """A plan whose key-store rows are written: what the outputs need to be openable."""
        delay = 0.5
        while True:
            try:
                plan = self._plan(bron, msg, headers)
                if plan.wrapped_keys:
                    await asyncio.to_thread(self.writer.put_wrapped_keys, plan.wrapped_keys)
                return plan
            except KeyConflict:  # a retry sealed this event again: new epochs, new key ids
                self.sealer.renew(k.gemeentecode for k in plan.wrapped_keys)
            except SubjectErasedWrite:
                return self.pipeline.dead_letter(plan.record_type, plan.event_id, [Reason(GEWIST)], bron,
                                                 msg.key, msg.value, headers, self.pipeline.clock())
            except KeystoreUnavailable:
                log.warning("keystore_unavailable_retrying", bron=f"{bron.topic}/{bron.partition}/{bron.offset}",
                            retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
            except Exception as exc:  # a bug: keep the record for ops, never drop it, never crash
                log.error("router_bug", error=type(exc).__name__,
                          bron=f"{bron.topic}/{bron.partition}/{bron.offset}")
                return self.pipeline.dead_letter(TOPIC_TYPES[bron.topic], None, [Reason(VERWERKINGSFOUT)], bron,
                                                 msg.key, msg.value, headers, self.pipeline.clock())

    async def _send_all(self, plan: Plan) -> list[r.KafkaRef]:
        return await self._send_all_outs(plan.outputs)

    async def _send_all_outs(self, outs: list) -> list[r.KafkaRef]:
        futures = [await self.app.producer.send(o.topic, o.key, o.value, None, None, o.headers) for o in outs]
        metas = [await f for f in futures]  # acknowledged by the brokers (acks=all)
        return [r.KafkaRef(m.topic, m.partition, m.offset) for m in metas]

    async def _retry(self, what: str, step: Any) -> Any:
        """Retry ``step`` while the broker is away (the partition waits, nothing is skipped). Any
        other exception is a bug: the worker crashes rather than ack a record without its receipt,
        so the record comes back after the restart and ops see the crash."""
        delay = 0.5
        while True:
            try:
                return await step()
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.warning("retrying", step=what, error=type(exc).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
            except Exception as exc:
                log.error("router_crash", step=what, error=type(exc).__name__)
                await self.app.crash(exc)
                raise


def create_app(settings: Settings, router_settings: RouterSettings | None = None) -> faust.App:
    router_settings = router_settings or RouterSettings()
    # Raw bytes everywhere (tables too): the contracts encode, faust only carries.
    app = make_app(ROUTER_APP_ID, settings, topic_partitions=settings.ingest_partitions,
                   key_serializer="raw", value_serializer="raw")
    ingest = app.topic(*INGEST, key_serializer="raw", value_serializer="raw")
    # key_type/value_type bytes: faust then (de)serialises the changelog as raw bytes; without it
    # the tables write one format and recover with JSON, and a restart never finishes recovery.
    gezien = app.Table("gezien", default=None, partitions=settings.ingest_partitions,
                       key_type=bytes, value_type=bytes)
    betrokken = app.Table("betrokken", default=None, partitions=settings.ingest_partitions,
                          key_type=bytes, value_type=bytes)
    state: dict[str, Router] = {}

    @app.agent(ingest)
    async def route(stream: faust.StreamT) -> None:
        router = state.get("router") or state.setdefault("router", Router(app, router_settings, gezien, betrokken))
        async for event in stream.events():
            await router.handle(event.message)

    return app
