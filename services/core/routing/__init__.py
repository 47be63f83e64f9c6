"""The router's functional core (issue 5): routing decisions, routing memory, the routed record,
receipts, dead letters. Pure: no Kafka, faust, HTTP or database; the adapter (services/router)
reads and writes topics and tables and calls these functions in between.

One input record, in the adapter's order (offsets are committed only after every effect is durable)::

    stored = gezien.get(idempotency_key(event_id))          # decoded terminal receipt, or None
    again = repeat_receipt(stored, record_type=t, event_id=event_id, bron=bron, at=now)
    if again is not None:                                   # redelivery or duplicate: route nothing
        emit again to uht.status.v1; done
    besluit = decide(t, record, on=peildatum(record), eerder=eerder(*(betrokken.get(k) for k in keys)))
    #   keys = memory_keys(t, record, secret)
    Unroutable → unroutable_record(...) to herstel.unroutable.v1, unroutable_receipt(...)
    Routed     → plain, _ = minimise(t, record); per target: seal_event(plain, ...) for the target,
                 routed_record(...), headers + prioriteit_headers(besluit) → gemeente topic;
                 routed_receipt(..., geschreven={code: KafkaRef}) ; betrokken[k] = remember(..., targets)
    emit the receipt; gezien[idempotency_key(event_id)] = the receipt

Idempotency (rules 7, 8): the key is the event_id (canonical UUID text). Per event id the adapter
stores the terminal receipt it emitted, nothing else (no personal data: the receipt has none). A
redelivered input record (same topic/partition/offset) gets that same receipt again; another
record with an event id that was ROUTED gets DUPLICATE and is not routed; a new copy of an event
that was INVALID or UNROUTABLE is handled afresh, since it reached no gemeente. Every id the core
makes (status_id, deadletter_id) is derived from the input position, so anything emitted twice
after a crash before the state was stored carries the same id, and a routed record keeps the UHT
event_id as ce_id, on which gemeenten deduplicate.

Decisions where the issue is silent:
- no woongemeente but eerder betrokken gemeenten (pauzeknop, erkenning): routed to those; the
  receipt is ROUTED with ``reden`` = why there was no woongemeente;
- eerder betrokken gemeenten are resolved again on the event date; one split since is skipped
  (``Routed.overgeslagen``), never guessed, and ops get ``overgeslagen_record(...)`` on
  herstel.unroutable.v1 with the original sealed for them, next to the routed records;
- the unroutable record uses the ``deadletter`` contract (reason, message, source, sealed original).
"""

from .aflevering import (
    CONTACTGEGEVENS, PRIORITEIT_HEADER, PRIORITEIT_URGENT, minimise, prioriteit_headers, routed_record,
)
from .besluit import (
    BUITENLAND,
    EERDER_BETROKKEN,
    FAN_OUT,
    GEEN_GEMEENTECODE,
    HERINDELING,
    SOORTEN,
    SPLITSING,
    VOW,
    WOONGEMEENTE,
    Decision,
    Routed,
    Target,
    Unroutable,
    decide,
    peildatum,
)
from .deadletter import OVERGESLAGEN, deadletter_record, overgeslagen_record, unroutable_record
from .geheugen import eerder, memory_keys, remember
from .refs import KafkaRef, idempotency_key
from .status import (
    AL_GEROUTEERD,
    DUPLICATE,
    INVALID,
    ROUTED,
    TERMINAL,
    UNROUTABLE,
    duplicate_receipt,
    invalid_receipt,
    repeat_receipt,
    routed_receipt,
    unroutable_receipt,
)

__all__ = [
    "AL_GEROUTEERD", "BUITENLAND", "CONTACTGEGEVENS", "DUPLICATE", "EERDER_BETROKKEN", "FAN_OUT",
    "GEEN_GEMEENTECODE", "HERINDELING", "INVALID", "PRIORITEIT_HEADER", "PRIORITEIT_URGENT", "ROUTED", "SOORTEN",
    "SPLITSING", "TERMINAL", "UNROUTABLE", "VOW", "WOONGEMEENTE",
    "Decision", "KafkaRef", "Routed", "Target", "Unroutable",
    "deadletter_record", "decide", "duplicate_receipt", "eerder", "idempotency_key", "invalid_receipt",
    "memory_keys", "minimise", "peildatum", "prioriteit_headers", "remember", "repeat_receipt", "routed_receipt",
    "routed_record", "unroutable_receipt", "unroutable_record", "OVERGESLAGEN", "overgeslagen_record",
]
