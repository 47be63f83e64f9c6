"""Re-derive the checked-in test vectors exactly (vectors/sealed_field_v1.json, FORMAT.md).

Two checks per byte string: our implementation reproduces it, and a from-scratch reading with only
the standard primitives (AES-GCM, HPKE, Ed25519, fastavro) opens it, as another implementation would.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

import fastavro
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from herstelbus.core.privacy import (
    KeyEpoch,
    OpeningKeyring,
    PiiLayout,
    PseudonymSecret,
    key_id_for,
    open_event,
    pseudonymise,
)
from herstelbus.core.privacy import _hazmat as hz
from herstelbus.core.privacy.epochs import _epoch_from_parts
from herstelbus.core.privacy.seal import _seal

V = json.loads((Path(__file__).parent / "vectors" / "sealed_field_v1.json").read_text())
KE = V["key_epoch"]


def from_json(v):
    if isinstance(v, dict):
        if set(v) == {"$timestamp_millis"}:
            return dt.datetime.fromtimestamp(v["$timestamp_millis"] / 1000, dt.timezone.utc)
        if set(v) == {"$date"}:
            return dt.date.fromisoformat(v["$date"])
        if set(v) == {"$bytes"}:
            return bytes.fromhex(v["$bytes"])
        return {k: from_json(x) for k, x in v.items()}
    return v


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


@pytest.mark.parametrize("ev", V["events"], ids=lambda e: e["event_id"])
def test_event_vectors_rederived(ev) -> None:
    layout = PiiLayout(V["source_schema"], V["pii_paths"])
    assert layout.fingerprint.hex() == V["schema_fingerprint_hex"]
    rec = from_json(ev["record"])
    gm, kid = KE["gemeentecode"], KE["kek_id"]
    assert hz.dek_aad(gm, ev["subject"], ev["event_id"], kid).hex() == ev["dek_aad_hex"]
    rnd = bytes.fromhex(ev["dek_hex"] + ev["dek_wrap_nonce_hex"])
    sealed = _seal(rec, layout, _epoch(), ev["event_id"], ev["subject"], lambda n: rnd[:n])
    assert sealed.wrapped_key.wrapped.hex() == ev["wrapped_dek_hex"]
    assert sealed.wrapped_key.key_id == kid
    for f in ev["fields"]:
        assert sealed.record[f["path"]].hex() == f["sealed_hex"], f["path"]


@pytest.mark.parametrize("ev", V["events"], ids=lambda e: e["event_id"])
def test_event_vectors_open_independently(ev) -> None:
    """What another implementation does: unwrap, decrypt with the documented AAD, Avro-decode."""
    kek = bytes.fromhex(KE["kek_hex"])
    w = bytes.fromhex(ev["wrapped_dek_hex"])
    assert w[0] == 0x01 and len(w) == 61
    dek = AESGCM(kek).decrypt(w[1:13], w[13:], bytes.fromhex(ev["dek_aad_hex"]))
    assert dek.hex() == ev["dek_hex"]
    rec = from_json(ev["record"])
    for f in ev["fields"]:
        blob = bytes.fromhex(f["sealed_hex"])
        kid_len = blob[1]
        assert blob[0] == 0x01 and blob[2 : 2 + kid_len].decode() == KE["kek_id"]
        nonce = blob[2 + kid_len : 14 + kid_len]
        assert nonce.hex() == f["nonce_hex"]
        pt = AESGCM(dek).decrypt(nonce, blob[14 + kid_len :], bytes.fromhex(f["aad_hex"]))
        assert pt.hex() == f["plaintext_hex"]
        wrapper = fastavro.parse_schema({"type": "record", "name": "W", "fields": [{"name": "v", "type": f["field_schema"]}]})
        value = fastavro.schemaless_reader(io.BytesIO(pt), wrapper, None)["v"]
        assert value == rec[f["path"]] == from_json(f["value"])


@pytest.mark.parametrize("ev", V["events"], ids=lambda e: e["event_id"])
def test_event_vectors_open_with_api(ev) -> None:
    g, s = _keys()
    ring = OpeningKeyring(KE["gemeentecode"], [g], [s.public_key()])
    ring.add(bytes.fromhex(KE["announcement_hex"]))
    layout = PiiLayout(V["source_schema"], V["pii_paths"])
    from herstelbus.core.privacy import WrappedKey

    row = WrappedKey(KE["gemeentecode"], ev["subject"], ev["event_id"], KE["kek_id"], bytes.fromhex(ev["wrapped_dek_hex"]))
    sealed = from_json(ev["record"]) | {f["path"]: bytes.fromhex(f["sealed_hex"]) for f in ev["fields"]}
    assert open_event(sealed, layout=layout, keyring=ring, event_id=ev["event_id"], subject=ev["subject"], key=row) == from_json(ev["record"])


def test_vector_persons_are_fictional() -> None:
    from herstelbus.core.bsn import is_valid_bsn

    for ev in V["events"]:
        assert ev["bsn"].startswith("9999") and is_valid_bsn(ev["bsn"])
    assert base64.b64decode(V["pseudonyms"][0]["secret_base64"])
