"""Issue 12 in the key store: keys of either suite in one directory, the exchange's signing keys
(made, or upgraded with ML-DSA-65), and `herstelbus keys audit` of who is still on x25519."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from herstelbus.cli import main
from herstelbus.core.privacy import (
    HYBRID_SUITE,
    X25519_SUITE,
    GemeenteKey,
    WrappedKey,
    generate_gemeente_key,
    generate_signing_key,
    key_id_for,
    load_signing_key,
    load_verify_key,
    new_key_epoch,
    private_key_to_pem,
)
from herstelbus.keystore import policy
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from tests.unit.keystore.kit import GM_A, GM_B, NOW


@pytest.fixture
def cli(db_url: str, tmp_path: Path):
    env = {"HERSTELBUS_KEYSTORE_URL": db_url, "HERSTELBUS_DATA_DIR": str(tmp_path / "data")}
    return lambda *args: CliRunner(env=env).invoke(main, list(args))


def _register(admin: KeyAdmin, gm: str, suite, since: dt.datetime) -> GemeenteKey:
    key = GemeenteKey(gm, generate_gemeente_key(suite).public_key(), since)
    admin.register_gemeente_key(key, "test")
    return key


def test_keygen_makes_hybrid_keys_by_default_and_classical_on_request(cli, tmp_path: Path) -> None:
    hybrid = cli("gemeente", "keygen", GM_A, "--out", str(tmp_path / "h"))
    classical = cli("gemeente", "keygen", GM_A, "--out", str(tmp_path / "c"), "--suite", "x25519")
    assert hybrid.exit_code == 0 and classical.exit_code == 0, hybrid.output + classical.output
    assert "key id: mlkem768x25519-" in hybrid.output and "key id: x25519-" in classical.output
    for folder in ("h", "c"):
        [public] = (tmp_path / folder).glob("*.public.pem")
        assert cli("gemeente", "register", GM_A, "--public-key", str(public)).exit_code == 0


def test_signing_keygen_and_upgrade(cli, tmp_path: Path) -> None:
    made = cli("keys", "signing-keygen", "--out", str(tmp_path / "new"))
    assert made.exit_code == 0, made.output
    keys = load_signing_key((tmp_path / "new" / "signing.pem").read_bytes())
    assert keys.mldsa65 is not None
    assert (tmp_path / "new" / "signing.pem").stat().st_mode & 0o777 == 0o600
    assert len(load_verify_key((tmp_path / "new" / "signing.pub.pem").read_bytes()).keys()) == 2

    old = generate_signing_key(pq=False)
    (tmp_path / "old.pem").write_bytes(private_key_to_pem(old))
    up = cli("keys", "signing-keygen", "--out", str(tmp_path / "up"), "--upgrade", str(tmp_path / "old.pem"))
    assert up.exit_code == 0, up.output
    upgraded = load_signing_key((tmp_path / "up" / "signing.pem").read_bytes())
    assert key_id_for(upgraded.ed25519.public_key()) == key_id_for(old.ed25519.public_key())  # older epochs verify
    assert upgraded.mldsa65 is not None
    again = cli("keys", "signing-keygen", "--out", str(tmp_path / "again"), "--upgrade", str(tmp_path / "up" / "signing.pem"))
    assert again.exit_code == 1 and "already has an ML-DSA-65 key" in again.output


def test_audit_counts_keys_epochs_and_records_per_suite(store: KeyStore, admin: KeyAdmin, cli) -> None:
    signing = generate_signing_key()
    old = _register(admin, GM_A, X25519_SUITE, NOW - dt.timedelta(days=400))
    _register(admin, GM_A, HYBRID_SUITE, NOW - dt.timedelta(days=30))  # past its overlap: new epochs hybrid
    b = _register(admin, GM_B, X25519_SUITE, NOW - dt.timedelta(days=400))  # not migrated
    writer = ExchangeWriter(store)
    for reg, n in ((old, 3), (b, 2)):
        epoch = new_key_epoch(reg, signing, NOW - dt.timedelta(days=100))
        writer.put_wrapped_keys([WrappedKey(reg.gemeentecode, "p1:" + "a" * 32, f"e-{reg.gemeentecode}-{i}",
                                            epoch.kek_id, os.urandom(61)) for i in range(n)])
    hybrid_epoch = new_key_epoch(admin.gemeente_keys(GM_A)[-1], signing, NOW)
    writer.put_wrapped_keys([WrappedKey(GM_A, "p1:" + "b" * 32, "e-h", hybrid_epoch.kek_id, os.urandom(61))])

    rows = {r.gemeentecode: r for r in policy.suite_audit(admin.gemeente_keys(), admin.records_by_suite(), NOW)}
    assert rows[GM_A].keys_by_suite == {"x25519": 1, "mlkem768x25519": 1}
    assert (rows[GM_A].wraps_to, rows[GM_A].classical_records, rows[GM_A].hybrid_records) == ("mlkem768x25519", 3, 1)
    assert (rows[GM_B].wraps_to, rows[GM_B].classical_records, rows[GM_B].klaar) == ("x25519", 2, False)

    out = cli("keys", "audit", "--json")
    assert out.exit_code == 0, out.output
    by_gm = {r["gemeentecode"]: r for r in map(json.loads, out.output.splitlines())}
    assert by_gm[GM_B] == {"gemeentecode": GM_B, "keys_by_suite": {"x25519": 1}, "wraps_to": "x25519",
                           "classical_records": 2, "hybrid_records": 0, "done": False}
    table = cli("keys", "audit").output
    assert "0 of 2 gemeenten fully on mlkem768x25519" in table and "5 retained records under x25519" in table
