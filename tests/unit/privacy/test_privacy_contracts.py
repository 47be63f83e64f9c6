"""Integration with the live contracts (herstelbus.core.contracts): every schema with pii tags seals
and opens; the sealed bundle is exactly ``bundle_schema``; a sealed record plus routing metadata is
a valid routed record on the wire (single-object encoded with the routed schema) that opens back to
the original event; the AAD's fingerprints are the catalogue's (= the single-object header's)."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import fastavro
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from herstelbus.core.contracts import ROUTED_TYPES, decode, encode
from herstelbus.core.contracts.catalogue import get_catalogue
from herstelbus.core.contracts.evolution import samples
from herstelbus.core.contracts.pii import bundle_schema, pii_paths, routed_schema
from herstelbus.core.contracts.schemas import fingerprint
from herstelbus.core.privacy import PiiLayout, open_event, pseudonymise, seal_event
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.seal import _seal

CAT = get_catalogue()
WITH_PII = [t for t in CAT.types() if pii_paths(CAT.current(t).schema)]
GM = "GM0363"


def test_the_exchange_events_carry_pii() -> None:
    assert {"overdracht", "pauzeknop", "erkenning"} <= set(WITH_PII)


@pytest.mark.parametrize("record_type", WITH_PII)
def test_live_contract_seals_and_opens(world, record_type) -> None:
    entry = CAT.current(record_type)
    layout = PiiLayout(entry.schema)  # pii fields taken from the contracts' tags
    assert layout.paths == pii_paths(entry.schema)
    assert layout.fingerprint == entry.fingerprint
    assert layout.bundle_schema == bundle_schema(entry.schema)
    assert layout.bundle_fingerprint == fingerprint(bundle_schema(entry.schema))
    ring = world.keyring(GM)
    subj = pseudonymise("999990019", world.secret)
    for i, rec in enumerate(samples(entry.schema)):
        eid = f"00000000-0000-4000-8000-{i:012d}"
        sealed = seal_event(rec, layout=layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
        assert set(sealed.record) == (set(rec) - set(layout.paths)) | {"verzegeld"}
        assert open_event(sealed.record, layout=layout, keyring=ring, event_id=eid, subject=subj, key=sealed.wrapped_key) == rec


@pytest.mark.parametrize("source, target", sorted(ROUTED_TYPES.items()))
def test_sealed_record_is_a_routed_record(world, source, target) -> None:
    """Router and gemeente through the real routed schema: seal, add routing metadata, single-object
    encode, decode, open → the original event (plus the metadata), in source field order."""
    entry = CAT.current(source)
    layout = PiiLayout(entry.schema)
    routed_fields = [f["name"] for f in routed_schema(entry.schema)["fields"]]
    ring = world.keyring(GM)
    subj = pseudonymise("999990019", world.secret)
    for i, rec in enumerate(samples(entry.schema)):
        eid = str(rec["event_id"])
        sealed = seal_event(rec, layout=layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
        meta = {
            "subject": subj,
            "routering": {"reden": "WOONGEMEENTE", "oorspronkelijke_gemeentecode": rec.get("gemeentecode"),
                          "opvolger_gemeentecode": None,
                          "gerouteerd_op": dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)},
            "sleutel_id": world.epochs[GM].recipient_key_id,
            "bron_schema": entry.fingerprint.hex(),
        }
        routed = {**sealed.record, "gemeentecode": GM, **meta}
        wire_type, on_wire = decode(encode(target, routed))
        assert wire_type == target and list(on_wire) == routed_fields
        plain = open_event(on_wire, layout=layout, keyring=ring, event_id=eid, subject=subj, key=sealed.wrapped_key)
        # fastavro reads a uuid-typed string back as uuid.UUID; everything else round-trips as is.
        assert plain == {**rec, "event_id": uuid.UUID(eid), "gemeentecode": GM, **meta}
        assert list(plain)[: len(rec)] == list(rec)  # the original event's shape first


def test_bundle_plaintext_is_plain_fastavro(world) -> None:
    """Any Avro library reads the opened bytes given bundle_schema: here fastavro, from the outside."""
    entry = CAT.current("overdracht")
    layout = PiiLayout(entry.schema)
    rec = samples(entry.schema)[1]
    subj, eid = pseudonymise("999990019", world.secret), "00000000-0000-4000-8000-000000000001"
    rnd = bytes(range(56))  # DEK || DEK-wrap nonce || bundle nonce, fixed so we know the DEK
    sealed = _seal(rec, layout, world.epochs[GM], eid, subj, lambda n: rnd[:n])
    kid, nonce, ct = hz.parse_sealed(sealed.record["verzegeld"])
    aad = hz.sealed_aad(GM, subj, eid, "verzegeld", entry.fingerprint, layout.bundle_fingerprint, kid)
    plaintext = AESGCM(rnd[:32]).decrypt(nonce, ct, aad)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(bundle_schema(entry.schema)), {p: rec[p] for p in layout.paths})
    assert plaintext == out.getvalue()
