"""Integration with the live contracts (herstelbus.core.contracts): every schema with pii tags seals
and opens, the sealed paths are exactly the routed schema's ``verzegeld`` fields, and the AAD's
schema fingerprint is the catalogue's (= the single-object header's)."""

from __future__ import annotations

import pytest

from herstelbus.core.contracts.catalogue import get_catalogue
from herstelbus.core.contracts.evolution import samples
from herstelbus.core.contracts.pii import pii_paths, routed_schema, sealed_paths
from herstelbus.core.privacy import PiiLayout, open_event, pseudonymise, seal_event

CAT = get_catalogue()
WITH_PII = [t for t in CAT.types() if pii_paths(CAT.current(t).schema)]


def test_the_exchange_events_carry_pii() -> None:
    assert {"overdracht", "pauzeknop", "erkenning"} <= set(WITH_PII)


@pytest.mark.parametrize("record_type", WITH_PII)
def test_live_contract_seals_and_opens(world, record_type) -> None:
    entry = CAT.current(record_type)
    layout = PiiLayout(entry.schema)  # pii_paths taken from the contracts
    assert layout.paths == pii_paths(entry.schema)
    assert layout.fingerprint == entry.fingerprint
    if not record_type.startswith("ontvangst"):
        assert set(sealed_paths(routed_schema(entry.schema))) == set(layout.paths)
    ring = world.keyring("GM0363")
    subj = pseudonymise("999990019", world.secret)
    for i, rec in enumerate(samples(entry.schema)):
        eid = f"00000000-0000-4000-8000-{i:012d}"
        sealed = seal_event(rec, layout=layout, epoch=world.epochs["GM0363"], event_id=eid, subject=subj)
        assert all(isinstance(sealed.record[p], bytes) for p in layout.paths if "." not in p)
        assert open_event(sealed.record, layout=layout, keyring=ring, event_id=eid, subject=subj, key=sealed.wrapped_key) == rec
