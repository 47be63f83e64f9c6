"""The acknowledgement relay's functional core (issue 6): per (event, gemeente) the state
ROUTED -> ONTVANGEN -> VERWERKT | GEWEIGERD, which acks are accepted, what is relayed to UHT, and
which deadlines have passed. Pure: no Kafka, faust or database; ``herstelbus.acks`` is the adapter.

One ack, in the adapter's order::

    doel = store.get(ack.event_id, ack.gemeentecode)          # a Doel from a ROUTED receipt, or None
    besluit = beoordeel(ack, doel, topic_gemeente=..., bron=ack position, now=now)
    Geaccepteerd -> send besluit.status (and besluit.unroutable) ; store besluit.doel
    Herhaling    -> nothing (same ack_id again, or the same status again)
    Geweigerd    -> send besluit.audit to herstel.audit.v1 (no relay)

Decisions where the issue is silent:
- the same status again under a new ack_id is a no-op, not a rejection (a gemeente that
  reconnects may acknowledge twice); a step back (ONTVANGEN after an end state) is STAP_TERUG,
  another end state after an end state is AL_AFGEROND;
- every id is derived (uuid5): a relay from the ack's position, an overdue notice from the routed
  record's position and the deadline, so anything emitted again after a crash has the same id;
- GEWEIGERD NIET_ONZE_INWONER also writes an unroutable record. The acks worker never sees
  plaintext, so ``origineel`` is empty and ``sleutel_id`` is ``geen``: the record names the event
  (event_id, UHT's ingest position as ``bron``) and ops re-route it from UHT's source (UHT
  publishes it again with the right gemeentecode);
- an urgent overdracht's deadlines come from the ROUTED receipt's ``urgent`` (statusbericht v2);
  a receipt from before v2 reads false, so it gets the non-urgent deadline.
"""

from .berichten import COMPONENT, audit_record, overdue_status, relay_status, unroutable_for_ops
from .staat import (
    AL_AFGEROND, EINDSTATUS, GEMEENTE_PAST_NIET_BIJ_TOPIC, GEWEIGERD, NIET_GEROUTEERD_AAN_GEMEENTE,
    NIET_ONZE_INWONER, ONTVANGEN, ROUTED, STAP_TERUG, VERWERKT, Besluit, Doel, beoordeel, doelen_uit,
    overgang,
)
from .termijnen import DEFAULT_TERMIJNEN, Overdue, Termijn, due, parse_termijnen, plus_werkdagen

__all__ = [
    "AL_AFGEROND", "COMPONENT", "DEFAULT_TERMIJNEN", "EINDSTATUS", "GEMEENTE_PAST_NIET_BIJ_TOPIC", "GEWEIGERD",
    "NIET_GEROUTEERD_AAN_GEMEENTE", "NIET_ONZE_INWONER", "ONTVANGEN", "ROUTED", "STAP_TERUG", "VERWERKT",
    "Besluit", "Doel", "Overdue", "Termijn", "audit_record", "beoordeel", "doelen_uit", "due", "overdue_status",
    "overgang", "parse_termijnen", "plus_werkdagen", "relay_status", "unroutable_for_ops",
]
