"""What a gemeente receives: the minimised record (rule 5), the routed record around the sealed
bundle, and the priority header (rule 6)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..contracts.pii import SEALED
from .besluit import Routed, Target

# Contact details: what a parent who wants no contact keeps from the gemeente. Everything else
# (persoon, dossier, toeslagpartner) stays: the gemeente still needs it as a creditor.
CONTACTGEGEVENS = ("adres", "telefoon", "email")

# A CloudEvents extension attribute (binary mode: ce_<name>), so parse_cloudevent_headers hands it
# to gemeente consumers in CloudEvent.extensions and a structured-mode webhook carries it as is.
PRIORITEIT_HEADER = "ce_prioriteit"
PRIORITEIT_URGENT = b"urgent"


def minimise(record_type: str, record: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """(record to seal, geminimaliseerd). An overdracht with contactwens NEE loses its contact
    details (nullable in the contract); the caller's record is never changed."""
    if record_type != "overdracht" or record.get("contactwens") != "NEE":
        return record, False
    return {**record, **dict.fromkeys(CONTACTGEGEVENS)}, True


def prioriteit_headers(besluit: Routed) -> list[tuple[str, bytes]]:
    """Extra Kafka headers for every routed record of this event: the urgent marker, or none."""
    return [(PRIORITEIT_HEADER, PRIORITEIT_URGENT)] if besluit.urgent else []


def routed_record(sealed_record: Mapping[str, Any], *, subject: str, target: Target, sleutel_id: str,
                  bron_schema: str, gerouteerd_op: datetime) -> dict[str, Any]:
    """The ``gerouteerde_<type>`` record for one target: ``seal_event``'s record (clear fields and
    ``verzegeld``) with the target gemeente and the routing metadata. Refuses an unsealed record."""
    if SEALED not in sealed_record:
        raise ValueError("record is not sealed")
    return {
        **sealed_record,
        "gemeentecode": target.gemeentecode,
        "subject": subject,
        "routering": {
            "reden": target.reden,
            "oorspronkelijke_gemeentecode": target.oorspronkelijke_gemeentecode,
            "opvolger_gemeentecode": target.opvolger_gemeentecode,
            "gerouteerd_op": gerouteerd_op,
        },
        "sleutel_id": sleutel_id,
        "bron_schema": bron_schema,
    }
