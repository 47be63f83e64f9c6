"""One input record in, a plan out: what to write where, which key-store rows first, which receipt.

The imperative shell around the pure core: it decodes, validates, looks up the routing memory
through the callables it is given, seals (the ``Sealer`` writes key epochs to the key store) and
encodes. It never raises for bad input: anything it cannot route becomes a dead letter or an
unroutable record with a receipt. Infrastructure failures (key store down) do raise, so the caller
retries the same record instead of acknowledging it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from herstelbus.core import contracts
from herstelbus.core import routing as r
from herstelbus.core.contracts import ContractError, WireError
from herstelbus.core.privacy import KeyUnavailable, PiiLayout, PseudonymSecret, WrappedKey
from herstelbus.core.privacy.ops import frame_record, seal_for_ops
from herstelbus.core.topology import (
    DEADLETTER, ERKENNING, OPS_MAX_MESSAGE_BYTES, OVERDRACHT, PAUZEKNOP, STATUS, UNROUTABLE,
)
from herstelbus.core.topology import gemeente_events_topic
from herstelbus.router.sealer import Sealer

TOPIC_TYPES = {OVERDRACHT: "overdracht", PAUZEKNOP: "pauzeknop", ERKENNING: "erkenning"}
GEEN_SLEUTEL = "GEEN_GEMEENTESLEUTEL"
GEWIST = "SUBJECT_GEWIST"  # the person was erased: nothing of theirs is sealed again
VERWERKINGSFOUT = "VERWERKINGSFOUT"  # a bug met this record: kept for ops, never dropped  # a target gemeente without a registered key: held for ops
VERKEERD_TOPIC = "TYPE_PAST_NIET_BIJ_TOPIC"

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Reason:
    """Duck-types the contracts' errors for ``deadletter_record``: a reason code and a path."""

    reason: str
    path: str = ""


@dataclass
class Out:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    gemeentecode: str | None = None  # set for routed records: the receipt names where each went


@dataclass
class Plan:
    record_type: str
    event_id: str | None
    outputs: list[Out] = field(default_factory=list)
    wrapped_keys: list[WrappedKey] = field(default_factory=list)
    receipt: Callable[[list[r.KafkaRef]], Mapping[str, Any]] | None = None  # given where outputs went
    memory: dict[str, frozenset[str]] = field(default_factory=dict)  # betrokken table updates
    remember_receipt: bool = True  # False for a repeated receipt: the stored one stays


class Pipeline:
    def __init__(self, sealer: Sealer, secret: PseudonymSecret, ops_key: Any, source: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.sealer = sealer
        self.secret = secret
        self.ops_key = ops_key
        self.source = source
        self.clock = clock
        catalogue = contracts.get_catalogue()
        self.layouts = {t: PiiLayout(catalogue.current(t).schema) for t in TOPIC_TYPES.values()}

    # -- the plan ---------------------------------------------------------------------------------
    def plan(self, bron: r.KafkaRef, key: bytes | None, value: bytes | None, headers: Headers, *,
             gezien: Callable[[str], Mapping[str, Any] | None],
             betrokken: Callable[[str], frozenset[str] | None]) -> Plan:
        expected = TOPIC_TYPES[bron.topic]
        now = self.clock()
        try:
            record_type, record = contracts.decode(value or b"")
        except WireError as error:
            return self.dead_letter(expected, None, [error], bron, key, value, headers, now)
        event_id = str(record.get("event_id")) if record.get("event_id") is not None else None
        if record_type != expected:
            return self.dead_letter(expected, event_id, [Reason(VERKEERD_TOPIC)], bron, key, value, headers, now)
        errors = contracts.validate(record_type, record, now=now)
        if errors:
            return self.dead_letter(expected, event_id, errors, bron, key, value, headers, now)

        again = r.repeat_receipt(gezien(r.idempotency_key(event_id)), record_type=record_type,
                                 event_id=event_id, bron=bron, at=now)
        if again is not None:
            return Plan(record_type, event_id, receipt=lambda _: again, remember_receipt=False)

        keys = r.memory_keys(record_type, record, self.secret)
        remembered = {k: betrokken(k) for k in keys}
        besluit = r.decide(record_type, record, on=r.peildatum(record), eerder=r.eerder(*remembered.values()))
        if isinstance(besluit, r.Unroutable):
            return self._unroutable(record_type, event_id, besluit.reason, bron, key, value, headers, now)
        try:
            plan = self._routed(record_type, record, event_id, besluit, keys[0], remembered, bron, now)
        except KeyUnavailable:  # fail closed: no key for a target gemeente, nothing leaves unsealed
            return self._unroutable(record_type, event_id, GEEN_SLEUTEL, bron, key, value, headers, now)
        if besluit.overgeslagen:  # routed, but an earlier involved gemeente cannot be reached: ops must know
            plan.outputs.append(self._overgeslagen(record_type, event_id, besluit, bron, key, value, headers, now))
        return plan

    # -- the three outcomes -------------------------------------------------------------------------
    def _routed(self, record_type: str, record: Mapping[str, Any], event_id: str, besluit: r.Routed,
                subject: str, remembered: dict[str, frozenset[str] | None], bron: r.KafkaRef,
                now: datetime) -> Plan:
        plain, _ = r.minimise(record_type, record)
        layout = self.layouts[record_type]
        routed_type = f"gerouteerde_{record_type}"
        plan = Plan(record_type, event_id)
        for target in besluit.targets:
            sealed, epoch = self.sealer.seal(plain, layout, target.gemeentecode, event_id, subject)
            routed = r.routed_record(sealed.record, subject=subject, target=target, sleutel_id=epoch.kek_id,
                                     bron_schema=layout.fingerprint_hex, gerouteerd_op=now)
            headers = contracts.cloudevent_headers(routed_type, id=event_id, source=self.source, time=now,
                                                   subject=subject, sequence=record["volgnummer"])
            plan.outputs.append(Out(gemeente_events_topic(target.gemeentecode), subject.encode(),
                                    contracts.encode(routed_type, routed, checked=False),
                                    headers + r.prioriteit_headers(besluit), target.gemeentecode))
            plan.wrapped_keys.append(sealed.wrapped_key)

        def receipt(written: list[r.KafkaRef]) -> Mapping[str, Any]:
            where = {out.gemeentecode: ref for out, ref in zip(plan.outputs, written, strict=True)}
            return r.routed_receipt(record_type, event_id, besluit, where, bron=bron, at=now)

        plan.receipt = receipt
        # Only what changed: each entry is a changelog record, and most events add nobody new.
        plan.memory = {k: after for k, v in remembered.items() if (after := r.remember(v, besluit.targets)) != v}
        return plan

    def _to_ops(self, topic: str, out_key: bytes, draft: dict[str, Any], key: bytes | None, value: bytes | None,
                headers: Headers, now: datetime) -> tuple[Out, dict[str, Any]]:
        """``draft`` (a deadletter record) with the input sealed for ops, bound to its id; as an Out.

        An input too large for the ops topic (possible only where an ingest topic takes more than
        Kafka's default) is not carried: the record names its position (``bron``) instead, since a
        record the broker refuses would stop the router for good."""
        framed = frame_record(key, value, headers)
        if len(framed) > ORIGINEEL_MAX_BYTES:
            record = {**draft, "origineel": b"", "sleutel_id": "-"}
        else:
            origineel, key_id = seal_for_ops(framed, self.ops_key, draft["deadletter_id"])
            record = {**draft, "origineel": origineel, "sleutel_id": key_id}
        return Out(topic, out_key, contracts.encode("deadletter", record),
                   contracts.cloudevent_headers("deadletter", id=draft["deadletter_id"], source=self.source,
                                                time=now)), record

    def dead_letter(self, record_type: str, event_id: str | None, fouten: list, bron: r.KafkaRef,
                     key: bytes | None, value: bytes | None, headers: Headers, now: datetime) -> Plan:
        # The dead letter's id is derived from the input position; seal the original bound to it.
        draft = r.deadletter_record(fouten, bron=bron, origineel=b"", sleutel_id="-", at=now,
                                    event_id=event_id, event_type=record_type)
        out, letter = self._to_ops(DEADLETTER, draft["deadletter_id"].encode(), draft, key, value, headers, now)
        reden = letter["reden"]
        return Plan(record_type, event_id, outputs=[out], receipt=lambda written: r.invalid_receipt(
            record_type, event_id, reden, bron=bron, doel=written[0], at=now))

    def _unroutable(self, record_type: str, event_id: str, reason: str, bron: r.KafkaRef, key: bytes | None,
                    value: bytes | None, headers: Headers, now: datetime) -> Plan:
        draft = r.unroutable_record(record_type, event_id, reason, bron=bron, origineel=b"", sleutel_id="-", at=now)
        out, held = self._to_ops(UNROUTABLE, event_id.encode(), draft, key, value, headers, now)
        return Plan(record_type, event_id, outputs=[out], receipt=lambda written: r.unroutable_receipt(
            record_type, event_id, held["reden"], bron=bron, doel=written[0], at=now))

    def _overgeslagen(self, record_type: str, event_id: str, besluit: r.Routed, bron: r.KafkaRef,
                      key: bytes | None, value: bytes | None, headers: Headers, now: datetime) -> Out:
        draft = r.overgeslagen_record(record_type, event_id, besluit.overgeslagen, bron=bron, origineel=b"",
                                      sleutel_id="-", at=now)
        return self._to_ops(UNROUTABLE, event_id.encode(), draft, key, value, headers, now)[0]

    # -- the receipt ---------------------------------------------------------------------------------
    def receipt_out(self, receipt: Mapping[str, Any]) -> Out:
        # str(): a receipt read back from the table has UUID objects where a new one has text.
        key = str(receipt.get("event_id") or receipt["status_id"]).encode()
        return Out(STATUS, key, contracts.encode("statusbericht", receipt, checked=False),
                   contracts.cloudevent_headers("statusbericht", id=str(receipt["status_id"]), source=self.source,
                                                time=receipt["at"]))


# What a sealed input may take of an ops record: the rest is reasons, ids and the seal's overhead.
ORIGINEEL_MAX_BYTES = OPS_MAX_MESSAGE_BYTES - 64 * 1024


def encode_receipt(receipt: Mapping[str, Any]) -> bytes:
    return contracts.encode("statusbericht", receipt, checked=False)


def decode_receipt(data: bytes | None) -> Mapping[str, Any] | None:
    if not data:
        return None
    try:
        return contracts.decode(data)[1]
    except ContractError:
        return None  # an unreadable memory entry is treated as unseen: routing again is idempotent


__all__ = ["Out", "Pipeline", "Plan", "decode_receipt", "encode_receipt"]
