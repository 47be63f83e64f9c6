"""What both vector files' tests share: the JSON value encoding, lp(), and opening one sealed event
by hand from its KEK, as another implementation would (AES-GCM twice, fastavro; FORMAT.md)."""

from __future__ import annotations

import datetime as dt
import io
import struct

import fastavro
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


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


def lp(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def open_by_hand(kek: bytes, ev: dict, v: dict, gemeentecode: str, kek_id: str) -> None:
    """Unwrap the DEK, rebuild both AADs from FORMAT.md, decrypt, Avro-decode; every intermediate
    value must be the vector's, and the bundle the record's personal-data fields."""
    w = bytes.fromhex(ev["wrapped_dek_hex"])
    assert w[0] == 0x01 and len(w) == 61
    dek_aad = (b"herstelbus/dek/v1\x00" + lp(gemeentecode.encode()) + lp(ev["subject"].encode())
               + lp(ev["event_id"].encode()) + lp(kek_id.encode()))
    assert dek_aad.hex() == ev["dek_aad_hex"]
    dek = AESGCM(kek).decrypt(w[1:13], w[13:], dek_aad)
    assert dek.hex() == ev["dek_hex"]
    blob = bytes.fromhex(ev["sealed_hex"])
    kid_len = blob[1]
    kid = blob[2 : 2 + kid_len]
    assert blob[0] == 0x01 and kid.decode() == kek_id
    nonce = blob[2 + kid_len : 14 + kid_len]
    assert nonce.hex() == ev["bundle_nonce_hex"]
    aad = (b"herstelbus/sealed/v1\x00" + b"\x01" + lp(gemeentecode.encode()) + lp(ev["subject"].encode())
           + lp(ev["event_id"].encode()) + lp(v["sealed_field"].encode()) + lp(bytes.fromhex(v["source_fingerprint_hex"]))
           + lp(bytes.fromhex(v["bundle_fingerprint_hex"])) + lp(kid))
    assert aad.hex() == ev["aad_hex"]
    pt = AESGCM(dek).decrypt(nonce, blob[14 + kid_len :], aad)
    assert pt.hex() == ev["bundle_plaintext_hex"]
    buf = io.BytesIO(pt)
    bundle = fastavro.schemaless_reader(buf, fastavro.parse_schema(v["bundle_schema"]), None)
    assert buf.tell() == len(pt)
    rec = from_json(ev["record"])
    assert bundle == {f["name"]: rec[f["name"]] for f in v["bundle_schema"]["fields"]}
