"""Re-derive the checked-in test vectors exactly (vectors/sealed_bundle_v1.json, FORMAT.md).

Two checks per byte string: our implementation reproduces it, and a from-scratch reading with only
the standard primitives (AES-GCM, HPKE, Ed25519, fastavro) opens it, as another implementation would.
The one value not re-derived is HPKE's ephemeral key inside the wrapped KEK (cryptography draws it
internally); it is checked by decrypting.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import fastavro
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from fastavro.schema import fingerprint, to_parsing_canonical_form

from herstelbus.core.contracts.pii import bundle_schema
from herstelbus.core.privacy import (
    KeyEpoch,
    OpeningKeyring,
    PiiLayout,
    PseudonymSecret,
    WrappedKey,
    key_id_for,
    open_event,
    pseudonymise,
)
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.epochs import _epoch_from_parts
from herstelbus.core.privacy.seal import _seal
from vector_kit import from_json, open_by_hand

V = json.loads((Path(__file__).parent / "vectors" / "sealed_bundle_v1.json").read_text())
KE = V["key_epoch"]


def _keys():
    g = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(KE["gemeente_private_key_hex"]))
    s = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KE["exchange_signing_key_hex"]))
    return g, s


def _epoch():
    _, s = _keys()
    utc = dt.timezone.utc
    return _epoch_from_parts(
        KE["gemeentecode"],
        bytes.fromhex(KE["kek_hex"]),
        KE["kek_id"],
        KE["recipient_key_id"],
        bytes.fromhex(KE["wrapped_kek_hex"]),
        s,
        dt.datetime.fromtimestamp(KE["not_before"], utc),
        dt.datetime.fromtimestamp(KE["not_after"], utc),
    )


def test_pseudonym_vectors() -> None:
    for v in V["pseudonyms"]:
        assert pseudonymise(v["bsn"], PseudonymSecret.from_base64(v["secret_base64"])) == v["pseudonym"]


def test_key_id_vectors() -> None:
    for v in V["key_ids"]:
        cls = x25519.X25519PublicKey if v["algorithm"] == "x25519" else ed25519.Ed25519PublicKey
        assert key_id_for(cls.from_public_bytes(bytes.fromhex(v["public_key_hex"]))) == v["key_id"]


def test_kek_wrap_and_announcement_vectors() -> None:
    g, s = _keys()
    info = hz.kek_info(KE["gemeentecode"], KE["kek_id"], KE["recipient_key_id"])
    assert info.hex() == KE["hpke_info_hex"]
    # Independent HPKE open (RFC 9180 base mode, single-shot, empty aad).
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    assert suite.decrypt(bytes.fromhex(KE["wrapped_kek_hex"]), g, info=info).hex() == KE["kek_hex"]
    # The announcement is deterministic given the wrapped KEK (Ed25519 signatures are deterministic).
    ann = _epoch().announcement
    assert (hz.LABEL_EPOCH_SIG + ann.body()).hex() == KE["signed_message_hex"]
    assert ann.to_bytes().hex() == KE["announcement_hex"]
    wire = bytes.fromhex(KE["announcement_hex"])
    s.public_key().verify(wire[-64:], bytes.fromhex(KE["signed_message_hex"]))
    assert KeyEpoch.from_bytes(wire) == ann


def _layout() -> PiiLayout:
    return PiiLayout(V["source_schema"])  # the fixture schema's own pii tags


def test_bundle_schema_vector() -> None:
    layout = _layout()
    assert bundle_schema(V["source_schema"]) == layout.bundle_schema == V["bundle_schema"]
    assert layout.fingerprint.hex() == V["source_fingerprint_hex"]
    assert layout.bundle_fingerprint.hex() == V["bundle_fingerprint_hex"]
    # Independently: CRC-64-AVRO of the Parsing Canonical Form, in single-object header byte order.
    for schema, fp in ((V["source_schema"], V["source_fingerprint_hex"]), (V["bundle_schema"], V["bundle_fingerprint_hex"])):
        assert fingerprint(to_parsing_canonical_form(fastavro.parse_schema(schema)), "CRC-64-AVRO") == fp


@pytest.mark.parametrize("ev", V["events"], ids=lambda e: e["event_id"])
def test_event_vectors_rederived(ev) -> None:
    layout = _layout()
    rec = from_json(ev["record"])
    gm, kid = KE["gemeentecode"], KE["kek_id"]
    assert hz.dek_aad(gm, ev["subject"], ev["event_id"], kid).hex() == ev["dek_aad_hex"]
    assert hz.sealed_aad(gm, ev["subject"], ev["event_id"], V["sealed_field"], layout.fingerprint,
                         layout.bundle_fingerprint, kid).hex() == ev["aad_hex"]
    assert layout._encode(rec).hex() == ev["bundle_plaintext_hex"]
    rnd = bytes.fromhex(ev["dek_hex"] + ev["dek_wrap_nonce_hex"] + ev["bundle_nonce_hex"])
    sealed = _seal(rec, layout, _epoch(), ev["event_id"], ev["subject"], lambda n: rnd[:n])
    assert sealed.wrapped_key.wrapped.hex() == ev["wrapped_dek_hex"]
    assert sealed.wrapped_key.key_id == kid
    assert sealed.record[V["sealed_field"]].hex() == ev["sealed_hex"]
    assert {k: v for k, v in sealed.record.items() if k != V["sealed_field"]} == from_json(ev["routed_clear"])


@pytest.mark.parametrize("ev", V["events"], ids=lambda e: e["event_id"])
def test_event_vectors_open_independently(ev) -> None:
    """What another implementation does: unwrap, rebuild the AAD from FORMAT.md, decrypt, Avro-decode."""
    open_by_hand(bytes.fromhex(KE["kek_hex"]), ev, V, KE["gemeentecode"], KE["kek_id"])


@pytest.mark.parametrize("ev", V["events"], ids=lambda e: e["event_id"])
def test_event_vectors_open_with_api(ev) -> None:
    g, s = _keys()
    ring = OpeningKeyring(KE["gemeentecode"], [g], [s.public_key()])
    ring.add(bytes.fromhex(KE["announcement_hex"]))
    row = WrappedKey(KE["gemeentecode"], ev["subject"], ev["event_id"], KE["kek_id"], bytes.fromhex(ev["wrapped_dek_hex"]))
    sealed = from_json(ev["routed_clear"]) | {V["sealed_field"]: bytes.fromhex(ev["sealed_hex"])}
    opened = open_event(sealed, layout=_layout(), keyring=ring, event_id=ev["event_id"], subject=ev["subject"], key=row)
    assert opened == from_json(ev["record"])
    assert list(opened) == list(ev["record"])  # the original field order


def test_vector_persons_are_fictional() -> None:
    from herstelbus.core.bsn import is_valid_bsn

    for ev in V["events"]:
        assert ev["bsn"].startswith("9999") and is_valid_bsn(ev["bsn"])
    assert base64.b64decode(V["pseudonyms"][0]["secret_base64"])
