"""Generates key_epoch_hybrid_v2.json (run once; the checked-in file is the reference).

    .venv/bin/python tests/unit/privacy/vectors/make_hybrid_vectors.py > tests/unit/privacy/vectors/key_epoch_hybrid_v2.json

The hybrid suite ``mlkem768x25519`` (issue 12, announcement version 2; FORMAT.md). Every key, KEK,
data key and nonce is fixed (derived from labels below). Two values are random inside the library
and so are recorded here once, then checked rather than re-derived by test_privacy_vectors_hybrid.py:

- the HPKE encapsulation inside ``wrapped_kek`` and inside the ops-sealed record (cryptography's HPKE
  API draws it internally): checked by decrypting;
- the ML-DSA-65 signature: cryptography 50 signs ML-DSA hedged (FIPS 204 ``rnd`` drawn per
  signature; no deterministic variant is offered): checked by verifying.

Everything else, the announcement body and its Ed25519 signature included, is re-derived exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519  # noqa: E402

from herstelbus.core.contracts.pii import SEALED  # noqa: E402
from herstelbus.core.privacy import (  # noqa: E402
    HYBRID_SUITE, ExchangeSigningKey, GemeenteKey, HybridPrivateKey, PiiLayout, PseudonymSecret, key_id_for,
    private_key_to_pem, public_key_to_pem,
)
from herstelbus.core.privacy import _hazmat as hz  # noqa: E402
from herstelbus.core.privacy.epochs import _epoch_from_parts  # noqa: E402
from herstelbus.core.privacy.ops import LABEL_OPS, frame_record, seal_for_ops  # noqa: E402
from privacy_fixtures import OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA, overdracht_record  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_vectors import event_vector, fixed, raw_pub  # noqa: E402  (the v1 generator's helpers)


def mlkem_seed(label: str) -> bytes:
    """FIPS 203 key-generation seed d || z (64 bytes)."""
    return fixed(label + " mlkem768 d") + fixed(label + " mlkem768 z")


def hybrid_key(label: str) -> tuple[HybridPrivateKey, bytes, bytes]:
    seed, xpriv = mlkem_seed(label), fixed(label + " x25519")
    key = HybridPrivateKey(mlkem.MLKEM768PrivateKey.from_seed_bytes(seed), x25519.X25519PrivateKey.from_private_bytes(xpriv))
    return key, seed, xpriv


def main() -> None:
    gm = "GM0363"
    gpriv, g_seed, g_x = hybrid_key("gemeente GM0363 hybrid")
    gpub = gpriv.public_key()
    ed_raw, ml_seed = fixed("exchange ed25519"), fixed("exchange mldsa65")  # Ed25519 as in the v1 vectors
    signing = ExchangeSigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(ed_raw),
                                 mldsa.MLDSA65PrivateKey.from_seed_bytes(ml_seed))
    verify = signing.public_key()
    secret = PseudonymSecret(fixed("pseudonym secret"))
    kek, kek_id = fixed("hybrid kek"), HYBRID_SUITE.kek_prefix + hz.b32(fixed("hybrid kek id", 10))
    nb = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    na = nb + dt.timedelta(hours=1)
    reg = GemeenteKey(gm, gpub, nb - dt.timedelta(days=30))
    assert reg.suite is HYBRID_SUITE
    info = hz.kek_info(gm, kek_id, reg.key_id)
    wrapped_kek = hz.hpke_wrap(kek, gpub.hpke(), info, HYBRID_SUITE)
    assert len(wrapped_kek) == HYBRID_SUITE.wrapped_kek_len == 1168
    epoch = _epoch_from_parts(gm, kek, kek_id, reg.key_id, wrapped_kek, signing, nb, na)
    ann = epoch.announcement
    body = ann.body()
    assert ann.to_bytes() == body + ann.signature + ann.pq_signature
    assert len(ann.signature) == 64 and len(ann.pq_signature) == 3309

    layout = PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS)
    event = event_vector(layout, epoch, secret, overdracht_record(0), "hybrid 0")

    opriv, o_seed, o_x = hybrid_key("ops hybrid")
    ops_context = "3f2b8c1e-6d4a-4b7e-9c0f-5a1d2e3b4c5d"  # a dead letter's id
    ops_record = (b"UHT-2021-000123", b'{"persoon": {"bsn": "999990019"}} <not a valid event>',
                  [("ce_id", b"5b7d0c3e-1f2a-4d6b-8e9c-0a1b2c3d4e5f"), ("leeg", None)])
    framed = frame_record(*ops_record)
    ops_sealed, ops_key_id = seal_for_ops(framed, opriv.public_key(), ops_context)

    out = {
        "description": "herstelbus privacy core test vectors for the hybrid suite mlkem768x25519 (issue 12): gemeente key "
        "ML-KEM-768 + X25519 (HPKE KEM 0x647A), key-epoch announcement version 2 signed with Ed25519 and ML-DSA-65, one "
        "sealed event under that epoch, one ops-sealed record. Byte formats in services/core/privacy/FORMAT.md. Recorded, "
        "not re-derivable (random inside the library): the HPKE encapsulations (checked by decrypting) and the ML-DSA-65 "
        "signature (hedged; checked by verifying). All persons are fictional; BSNs are 11-proef-valid test numbers.",
        "suite": {
            "name": HYBRID_SUITE.name,
            "announcement_version": HYBRID_SUITE.announcement_version,
            "hpke_kem_id": HYBRID_SUITE.kem_id,
            "hpke_kdf_id": HYBRID_SUITE.kdf_id,
            "hpke_aead_id": HYBRID_SUITE.aead_id,
            "hpke_enc_len": HYBRID_SUITE.enc_len,
            "wrapped_kek_len": HYBRID_SUITE.wrapped_kek_len,
        },
        "key_ids": [
            {"algorithm": "mlkem768x25519", "public_key_hex": gpub.raw().hex(), "key_id": key_id_for(gpub)},
            {"algorithm": "ed25519", "public_key_hex": raw_pub(verify.ed25519), "key_id": key_id_for(verify.ed25519)},
            {"algorithm": "mldsa65", "public_key_hex": verify.mldsa65.public_bytes_raw().hex(), "key_id": key_id_for(verify.mldsa65)},
        ],
        "key_epoch": {
            "gemeentecode": gm,
            "gemeente_mlkem768_seed_hex": g_seed.hex(),
            "gemeente_x25519_private_key_hex": g_x.hex(),
            "gemeente_mlkem768_public_key_hex": gpub.mlkem.public_bytes_raw().hex(),
            "gemeente_x25519_public_key_hex": raw_pub(gpub.x25519),
            "gemeente_private_key_pem": private_key_to_pem(gpriv).decode("ascii"),
            "gemeente_public_key_pem": public_key_to_pem(gpub).decode("ascii"),
            "recipient_key_id": reg.key_id,
            "exchange_ed25519_private_key_hex": ed_raw.hex(),
            "exchange_mldsa65_seed_hex": ml_seed.hex(),
            "exchange_ed25519_public_key_hex": raw_pub(verify.ed25519),
            "exchange_mldsa65_public_key_hex": verify.mldsa65.public_bytes_raw().hex(),
            "exchange_verify_key_pem": public_key_to_pem(verify).decode("ascii"),
            "signer_key_id": ann.signer_key_id,
            "pq_signer_key_id": ann.pq_signer_key_id,
            "kek_hex": kek.hex(),
            "kek_id": kek_id,
            "not_before": int(nb.timestamp()),
            "not_after": int(na.timestamp()),
            "hpke_info_hex": info.hex(),
            "wrapped_kek_hex": wrapped_kek.hex(),
            "body_hex": body.hex(),
            "signed_message_hex": (hz.LABEL_EPOCH_SIG + body).hex(),
            "pq_signed_message_hex": (hz.LABEL_EPOCH_PQ_SIG + body).hex(),
            "signature_hex": ann.signature.hex(),
            "pq_signature_hex": ann.pq_signature.hex(),
            "announcement_hex": ann.to_bytes().hex(),
        },
        "source_schema": OVERDRACHT_SCHEMA,
        "source_fingerprint_hex": layout.fingerprint.hex(),
        "sealed_field": SEALED,
        "bundle_schema": layout.bundle_schema,
        "bundle_fingerprint_hex": layout.bundle_fingerprint.hex(),
        "event": {**event, "pseudonym_secret_hex": fixed("pseudonym secret").hex()},
        "ops_sealed": {
            "ops_mlkem768_seed_hex": o_seed.hex(),
            "ops_x25519_private_key_hex": o_x.hex(),
            "ops_public_key_hex": opriv.public_key().raw().hex(),
            "ops_key_id": ops_key_id,
            "context": ops_context,
            "record_key_hex": ops_record[0].hex(),
            "record_value_hex": ops_record[1].hex(),
            "record_headers": [[n, None if v is None else v.hex()] for n, v in ops_record[2]],
            "framed_hex": framed.hex(),
            "hpke_info_hex": (LABEL_OPS + hz.lp_str(ops_context) + hz.lp_str(ops_key_id)).hex(),
            "sealed_hex": ops_sealed.hex(),
        },
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
