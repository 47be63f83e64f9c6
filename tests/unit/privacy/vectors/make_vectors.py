"""Generates sealed_bundle_v1.json (run once; the checked-in file is the reference).

    .venv/bin/python tests/unit/privacy/vectors/make_vectors.py > tests/unit/privacy/vectors/sealed_bundle_v1.json

Every key, nonce and data key is fixed (derived from labels below). The one exception is the HPKE
ephemeral key inside ``wrapped_kek``: cryptography's HPKE API draws it internally, so it is recorded
here once and checked by decryption; everything derived from it (the announcement bytes and
signature) is re-derived exactly by test_privacy_vectors.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519  # noqa: E402

from herstelbus.core.contracts.pii import SEALED  # noqa: E402
from herstelbus.core.privacy import GemeenteKey, PiiLayout, PseudonymSecret, key_id_for, pseudonymise  # noqa: E402
from herstelbus.core.privacy import _hazmat as hz  # noqa: E402
from herstelbus.core.privacy.epochs import _epoch_from_parts  # noqa: E402
from herstelbus.core.privacy.seal import _seal  # noqa: E402
from privacy_fixtures import OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA, fictional_bsn, overdracht_record  # noqa: E402


def fixed(label: str, n: int = 32) -> bytes:
    return hashlib.sha256(b"herstelbus test vector: " + label.encode()).digest()[:n]


def raw_pub(k) -> str:
    return k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def to_json(v):
    if isinstance(v, dt.datetime):
        return {"$timestamp_millis": int(v.timestamp() * 1000)}
    if isinstance(v, dt.date):
        return {"$date": v.isoformat()}
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return {"$bytes": v.hex()}
    return v


def event_vector(layout: PiiLayout, epoch, secret: PseudonymSecret, rec: dict, label: str) -> dict:
    """One sealed event under ``epoch`` with its data key and nonces fixed by ``label``, and every
    intermediate value a reader re-derives."""
    gm, kek_id = epoch.gemeentecode, epoch.kek_id
    bsn = rec["persoon"]["bsn"]
    subj = pseudonymise(bsn, secret)
    eid = rec["event_id"]
    dek, wrap_nonce, nonce = fixed(f"dek {label}"), fixed(f"dek wrap nonce {label}", 12), fixed(f"bundle nonce {label}", 12)
    sealed = _seal(rec, layout, epoch, eid, subj, lambda n, _b=dek + wrap_nonce + nonce: _b[:n])
    blob = sealed.record[SEALED]
    kid, blob_nonce, _ = hz.parse_sealed(blob)
    assert blob_nonce == nonce and kid == kek_id
    return {
        "event_id": eid,
        "bsn": bsn,
        "subject": subj,
        "dek_hex": dek.hex(),
        "dek_wrap_nonce_hex": wrap_nonce.hex(),
        "bundle_nonce_hex": nonce.hex(),
        "dek_aad_hex": hz.dek_aad(gm, subj, eid, kek_id).hex(),
        "wrapped_dek_hex": sealed.wrapped_key.wrapped.hex(),
        "record": to_json(rec),
        "routed_clear": to_json({k: v for k, v in sealed.record.items() if k != SEALED}),
        "bundle_plaintext_hex": layout._encode(rec).hex(),
        "aad_hex": hz.sealed_aad(gm, subj, eid, SEALED, layout.fingerprint, layout.bundle_fingerprint, kek_id).hex(),
        "sealed_hex": blob.hex(),
    }


def main() -> None:
    gm = "GM0363"
    gpriv = x25519.X25519PrivateKey.from_private_bytes(fixed("gemeente GM0363 x25519"))
    spriv = ed25519.Ed25519PrivateKey.from_private_bytes(fixed("exchange ed25519"))
    secret_raw = fixed("pseudonym secret")
    secret = PseudonymSecret(secret_raw)
    kek, kek_id = fixed("kek"), "kek-" + hz.b32(fixed("kek id", 10))
    nb = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    na = nb + dt.timedelta(hours=1)
    reg = GemeenteKey(gm, gpriv.public_key(), nb - dt.timedelta(days=30))
    info = hz.kek_info(gm, kek_id, reg.key_id)
    wrapped_kek = hz.hpke_wrap(kek, gpriv.public_key(), info)
    epoch = _epoch_from_parts(gm, kek, kek_id, reg.key_id, wrapped_kek, spriv, nb, na)
    ann = epoch.announcement
    layout = PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS)

    events = [event_vector(layout, epoch, secret, overdracht_record(i), str(i)) for i in (0, 1)]  # with and without a toeslagpartner

    out = {
        "description": "herstelbus privacy core v1 test vectors (one sealed persoonsgegevens bundle per event); byte formats in services/core/privacy/FORMAT.md. "
        "All persons are fictional; BSNs are 11-proef-valid test numbers.",
        "pseudonyms": [
            {"secret_base64": base64.b64encode(secret_raw).decode(), "bsn": b, "pseudonym": pseudonymise(b, secret)}
            for b in ("999990019", "999990007", fictional_bsn(7))
        ],
        "key_ids": [
            {"algorithm": "x25519", "public_key_hex": raw_pub(gpriv.public_key()), "key_id": key_id_for(gpriv.public_key())},
            {"algorithm": "ed25519", "public_key_hex": raw_pub(spriv.public_key()), "key_id": key_id_for(spriv.public_key())},
        ],
        "key_epoch": {
            "gemeentecode": gm,
            "gemeente_private_key_hex": fixed("gemeente GM0363 x25519").hex(),
            "recipient_key_id": reg.key_id,
            "exchange_signing_key_hex": fixed("exchange ed25519").hex(),
            "signer_key_id": ann.signer_key_id,
            "kek_hex": kek.hex(),
            "kek_id": kek_id,
            "not_before": int(nb.timestamp()),
            "not_after": int(na.timestamp()),
            "hpke_info_hex": info.hex(),
            "wrapped_kek_hex": wrapped_kek.hex(),
            "signed_message_hex": (hz.LABEL_EPOCH_SIG + ann.body()).hex(),
            "announcement_hex": ann.to_bytes().hex(),
        },
        "source_schema": OVERDRACHT_SCHEMA,
        "source_fingerprint_hex": layout.fingerprint.hex(),
        "sealed_field": SEALED,
        "bundle_schema": layout.bundle_schema,
        "bundle_fingerprint_hex": layout.bundle_fingerprint.hex(),
        "events": events,
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
