"""``herstelbus reroute``, the pure part: which held events go through the routing rules again once
the reference data or a gemeente's key was corrected. Built on ``herstelbus.core.ops.deadletter``
(the same decision, copies and audit records as a redrive); the adapter is ``herstelbus.ops.reroute``.

Two sources:
- ``--from unroutable``: the records on herstel.unroutable.v1, their originals opened with the ops
  key. Not the ``EERDER_BETROKKEN_OVERGESLAGEN`` records there (those events were routed; the
  record only tells ops that an earlier involved gemeente was not reached) and not the acks relay's
  ``NIET_ONZE_INWONER`` records (no original: UHT publishes the event again);
- ``--from ingest``: ingest records (plaintext, 24 h retention) whose terminal receipt on
  uht.status.v1 is UNROUTABLE, copied as they are.
Either way an event id goes once per run (its latest record), never when it was routed since (a
copy would only get DUPLICATE), and not while an earlier copy still waits for its receipt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from herstelbus.core.ops.deadletter import (
    NIET_MEER_BEWAARD, REROUTE, Besluit, DeadLetter, Kandidaat, Selectie, Stand, beslis, kandidaat,
)
from herstelbus.core.ops.reconcile import IngestRecord, Receipt
from herstelbus.core.routing.status import UNROUTABLE

BRONNEN = ("unroutable", "ingest")


def herkomst(record: IngestRecord) -> str:
    """An ingest record's name in the summary, the audit and its copy's ``herstel_reroute`` header."""
    return f"{record.ref.topic}/{record.ref.partition}/{record.ref.offset}"


def kies_vastgehouden(brieven: Iterable[DeadLetter], selectie: Selectie, st: Stand) -> list[Besluit]:
    """``--from unroutable``: every held record the selection takes, decided."""
    return beslis([kandidaat(dl) for dl in brieven if selectie.past(dl)], st, actie=REROUTE)


def kies_ingest(records: Iterable[IngestRecord], receipts: Iterable[Receipt], st: Stand, *,
                reden: str | None = None) -> list[Besluit]:
    """``--from ingest``: the records whose only terminal receipt is UNROUTABLE (with ``reden`` when
    given), decided. Records without such a receipt are no candidates (not counted as skipped)."""
    statussen: dict = {}
    for rc in receipts:
        if rc.bron is not None:
            statussen.setdefault(rc.bron, {})[rc.status_id] = rc
    kandidaten = []
    for rec in records:
        found = list(statussen.get(rec.ref, {}).values())
        if len({rc.status for rc in found}) != 1 or found[0].status != UNROUTABLE:
            continue  # routed, invalid, duplicate, no receipt yet, or contradictory (reconcile's to report)
        if reden is not None and found[0].reden != reden:
            continue
        kandidaten.append(Kandidaat(herkomst(rec), rec.ref, rec.event_id or found[0].event_id,
                                    found[0].reden or UNROUTABLE, (rec.timestamp_ms, rec.ref.offset)))
    return beslis(kandidaten, st, actie=REROUTE)


def zonder(besluiten: Sequence[Besluit], gevonden: Iterable[str]) -> list[Besluit]:
    """The records to send that could no longer be read (retention since) become skipped."""
    gevonden = set(gevonden)
    return [b if not b.opnieuw or b.kandidaat.herkomst in gevonden else Besluit(b.kandidaat, NIET_MEER_BEWAARD)
            for b in besluiten]


__all__ = ["BRONNEN", "herkomst", "kies_ingest", "kies_vastgehouden", "zonder"]
