"""Opening one poll batch of routed records as the gemeente: decode, verify the key epochs' signed
announcements, fetch every wrapped key of the batch in one request, open each record.

No Kafka here (messages are anything with topic, partition, offset, value and headers) and the key
store is any object with ``aankondigingen`` and ``sleutels``, so the unit tests run without either.
Every record gives exactly one result: opened, or refused with its code; none is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from herstelbus.core import contracts
from herstelbus.core.contracts import ROUTED_TYPES
from herstelbus.core.privacy import (
    ContextMismatch, KeyRef, KeyRowState, OpeningKeyring, PiiLayout, PrivacyError, UnknownKeyEpoch, WrappedKey,
    key_ref, open_event,
)

from .resultaat import Geopend, Geweigerd, Positie, Resultaat, Weigercode, weigercode

ROUTED_PREFIX = "gerouteerde_"
_ROUTED = frozenset(ROUTED_TYPES.values())


class Sleutelbron(Protocol):
    def aankondigingen(self, kek_ids: Sequence[str]) -> dict[str, bytes]: ...
    def sleutels(self, refs: Sequence[KeyRef]) -> list[WrappedKey | KeyRowState]: ...


@dataclass(slots=True)
class _Gedecodeerd:
    """A record that decoded and names its key: waiting for its wrapped key."""

    positie: Positie
    ce: contracts.CloudEvent
    type: str
    record: dict[str, Any]
    layout: PiiLayout
    ref: KeyRef


class Opener:
    def __init__(self, gemeentecode: str, keyring: OpeningKeyring, sleutelbron: Sleutelbron) -> None:
        self.gemeentecode = gemeentecode
        self.keyring = keyring
        self.sleutelbron = sleutelbron
        self._layouts: dict[str, PiiLayout] = {}  # by bron_schema: parsed once per source schema version
        self._foute_epochs: dict[str, Weigercode] = {}  # announcements that failed verification: never retried

    def open_batch(self, messages: Iterable[Any]) -> list[Resultaat]:
        slots: list[Resultaat | _Gedecodeerd] = [self._decodeer(m) for m in messages]
        waiting = [s for s in slots if isinstance(s, _Gedecodeerd)]
        if not waiting:
            return slots  # type: ignore[return-value]
        self._verifieer_epochs({s.ref.key_id for s in waiting})
        keys = iter(self.sleutelbron.sleutels([s.ref for s in waiting]))
        return [self._open(s, next(keys)) if isinstance(s, _Gedecodeerd) else s for s in slots]

    # -- steps ----------------------------------------------------------------------------------
    def _decodeer(self, message: Any) -> Resultaat | _Gedecodeerd:
        positie = Positie(message.topic, message.partition, message.offset)
        ce = None
        try:
            ce = contracts.parse_cloudevent_headers(message.headers or [])
            routed_type, record = contracts.decode(message.value)
            if routed_type not in _ROUTED or ce.record_type != routed_type:
                raise contracts.WireError("TYPE_ONGELDIG", "ce_type")
            if str(record["event_id"]) != ce.id or record["subject"] != ce.subject:
                raise ContextMismatch("envelope_mismatch")
            if record["gemeentecode"] != self.gemeentecode:
                raise ContextMismatch("other_gemeente")
            layout = self._layout(record["bron_schema"])
            ref = key_ref(record, layout=layout, gemeentecode=self.gemeentecode, event_id=ce.id,
                          subject=record["subject"])
        except (contracts.ContractError, PrivacyError) as exc:
            return Geweigerd(ce.id if ce else None, weigercode(exc), ce.subject if ce else None,
                             _source_type(ce.record_type) if ce else None, _sequence(ce), positie)
        return _Gedecodeerd(positie, ce, routed_type.removeprefix(ROUTED_PREFIX), record, layout, ref)

    def _layout(self, bron_schema: str) -> PiiLayout:
        layout = self._layouts.get(bron_schema)
        if layout is None:
            try:
                entry = contracts.get_catalogue().by_fingerprint(bytes.fromhex(bron_schema))
            except ValueError:
                entry = None
            if entry is None or entry.type not in ROUTED_TYPES:
                raise contracts.UnknownSchema("SCHEMA_ONBEKEND", "bron_schema")
            layout = self._layouts[bron_schema] = PiiLayout(entry.schema)
        return layout

    def _verifieer_epochs(self, kek_ids: set[str]) -> None:
        """Fetch the announcements not yet known (cached in the keyring by KEK id) and add them:
        ``OpeningKeyring.add`` checks the exchange's signature before anything is unwrapped."""
        nieuw = sorted(kek_ids - self.keyring.known_epochs - set(self._foute_epochs))
        if not nieuw:
            return
        for kek_id, announcement in self.sleutelbron.aankondigingen(nieuw).items():
            try:
                epoch = self.keyring.add(announcement)
                if epoch.kek_id != kek_id:
                    raise ContextMismatch("kek_id_mismatch", key_id=kek_id)
            except PrivacyError as exc:
                self._foute_epochs[kek_id] = weigercode(exc)

    def _open(self, s: _Gedecodeerd, key: WrappedKey | KeyRowState) -> Resultaat:
        try:
            if s.ref.key_id in self._foute_epochs:
                raise UnknownKeyEpoch(key_id=s.ref.key_id)  # replaced by the epoch's own code below
            plain = open_event(s.record, layout=s.layout, keyring=self.keyring, event_id=s.ce.id,
                               subject=s.ref.subject, key=key)
        except PrivacyError as exc:
            code = self._foute_epochs.get(s.ref.key_id) or weigercode(exc)
            return Geweigerd(s.ce.id, code, s.ref.subject, s.type, s.record["volgnummer"], s.positie)
        data = {name: plain.get(name) for name in s.layout._names}  # the source event's fields only
        ext = s.ce.extensions
        return Geopend(
            event_id=s.ce.id, type=s.type, gemeentecode=self.gemeentecode, subject=s.ref.subject,
            routing_reason=s.record["routering"]["reden"], sequence=s.record["volgnummer"], data=data,
            routering=s.record["routering"], priority="urgent" if ext.get("prioriteit") == "urgent" else "normaal",
            replay=ext.get("replay", "").lower() in ("1", "true", "ja"), time=s.ce.time, positie=s.positie,
        )


def _source_type(record_type: str | None) -> str | None:
    return record_type.removeprefix(ROUTED_PREFIX) if record_type in _ROUTED else None


def _sequence(ce: contracts.CloudEvent | None) -> int | None:
    return int(ce.sequence) if ce is not None and ce.sequence else None


__all__ = ["Opener", "Sleutelbron"]
