"""Routing memory (rule 3): which gemeenten received events of a person or a dossier.

The adapter keeps ``key -> frozenset of gemeentecodes`` in a faust table. Those tables are
replicated through changelog topics that outlive the 24-hour plaintext ingest topics, so the keys
are pseudonyms (subject ``p1:``, dossier ``d1:``), never a BSN or a dossiernummer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..privacy import PseudonymSecret, pseudonymise, pseudonymise_dossier
from .besluit import SOORTEN, Target


def memory_keys(record_type: str, record: Mapping[str, Any], secret: PseudonymSecret) -> tuple[str, ...]:
    """(subject pseudonym, dossier pseudonym): look up both, union the gemeenten, remember under both.

    The dossier key is what reaches the toeslagpartner's and ex-partner's gemeenten: their events
    carry another person but the same dossier.
    """
    if record_type not in SOORTEN:
        raise ValueError("not a routed event type")
    return (pseudonymise(record["persoon"]["bsn"], secret), pseudonymise_dossier(record["dossiernummer"], secret))


def eerder(*remembered: frozenset[str] | None) -> frozenset[str]:
    """The union of what the memory holds under each key (None: nothing remembered yet)."""
    return frozenset().union(*(r for r in remembered if r))


def remember(current: frozenset[str] | None, targets: Iterable[Target]) -> frozenset[str]:
    """The memory after routing to ``targets``: the gemeenten as they exist now (after herindeling),
    so a later event resolves them again if they merge."""
    return frozenset(current or ()) | {t.gemeentecode for t in targets}
