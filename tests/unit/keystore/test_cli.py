"""The key-store CLI through the real `herstelbus` group, on a temp SQLite key store."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from herstelbus.cli import main
from herstelbus.core.privacy import KeyRowState, PseudonymSecret, key_id_for, load_gemeente_private_key, pseudonymise
from herstelbus.keystore import policy
from herstelbus.keystore.store import ExchangeWriter, GemeenteAccess, KeyAdmin, KeyStore
from tests.unit.keystore.kit import BSN, GM_A, GM_B, OTHER_BSN, World, assert_no_personal_data

PURPOSE = "brede-ondersteuning"


@pytest.fixture
def secret(tmp_path: Path) -> PseudonymSecret:
    s = PseudonymSecret.generate()
    (tmp_path / "pseudonym.key").write_text(s.export_base64() + "\n")
    return s


@pytest.fixture
def cli(tmp_path: Path, db_url: str, secret: PseudonymSecret):
    env = {
        "HERSTELBUS_KEYSTORE_URL": db_url,
        "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp_path / "pseudonym.key"),
        "HERSTELBUS_DATA_DIR": str(tmp_path / "data"),
    }

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner(env=env).invoke(main, list(args), input=input)

    return run


def _fails_cleanly(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("herstelbus: error: "), result.output
    for f in fragments:
        assert f in lines[0]


def test_keygen_writes_a_0600_private_key_and_prints_only_the_key_id(cli, tmp_path: Path) -> None:
    result = cli("gemeente", "keygen", GM_A, "--out", str(tmp_path / "keys"))
    assert result.exit_code == 0, result.output
    (private,) = (tmp_path / "keys").glob("*.private.pem")
    (public,) = (tmp_path / "keys").glob("*.public.pem")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    kid = key_id_for(load_gemeente_private_key(private.read_bytes()).public_key())
    assert f"key id: {kid}" in result.output and kid in private.name
    assert "PRIVATE KEY" not in result.output and private.read_text() not in result.output
    again = cli("gemeente", "keygen", GM_A, "--out", str(tmp_path / "keys"))  # rotation: a second pair beside it
    assert again.exit_code == 0 and len(list((tmp_path / "keys").glob("*.private.pem"))) == 2
    _fails_cleanly(cli("gemeente", "keygen", "GM9999", "--out", str(tmp_path / "x")), "GM9999")


def test_register_adds_keys_to_the_directory_and_rotation_adds_a_newer_one(cli, tmp_path: Path,
                                                                           store: KeyStore) -> None:
    kids = []
    for _ in range(2):
        out = cli("gemeente", "keygen", GM_A, "--out", str(tmp_path / "keys")).output
        kids.append(out.split("key id: ")[1].split()[0])
    pubs = {p.name.split(".")[1]: p for p in (tmp_path / "keys").glob("*.public.pem")}
    first = cli("gemeente", "register", GM_A, "--public-key", str(pubs[kids[0]]), "--valid-from", "2026-01-01")
    assert first.exit_code == 0, first.output
    assert f"registered: {GM_A} key id {kids[0]}, valid from 2026-01-01T00:00:00+00:00" in first.output
    same = cli("gemeente", "register", GM_A, "--public-key", str(pubs[kids[0]]), "--valid-from", "2026-01-01")
    assert same.exit_code == 0 and "already registered" in same.output
    rotated = cli("gemeente", "register", GM_A, "--public-key", str(pubs[kids[1]]),
                  "--valid-from", "2026-06-01T12:00:00+02:00")
    assert rotated.exit_code == 0, rotated.output
    keys = ExchangeWriter(store).gemeente_keys(GM_A)
    assert [k.key_id for k in keys] == kids and keys[1].valid_from.isoformat() == "2026-06-01T10:00:00+00:00"

    _fails_cleanly(cli("gemeente", "register", GM_A, "--public-key", str(pubs[kids[0]]), "--valid-from", "2026-02-01"),
                   "already stored with different content")
    _fails_cleanly(cli("gemeente", "register", GM_B, "--public-key", str(pubs[kids[1]]), "--valid-from", "2026-02-01",
                       "--valid-until", "2026-01-01"), "empty_validity")
    private = next((tmp_path / "keys").glob("*.private.pem"))
    _fails_cleanly(cli("gemeente", "register", GM_A, "--public-key", str(private)), "not a readable gemeente public key")
    _fails_cleanly(cli("gemeente", "register", GM_A, "--public-key", str(pubs[kids[0]]), "--valid-from", "1 jan"),
                   "--valid-from")


def test_token_is_printed_once_and_authenticates_its_gemeente(cli, store: KeyStore) -> None:
    result = cli("keys", "token", GM_A)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("hbk_") and "shown once" in result.stderr
    assert GemeenteAccess(store).authenticate(token) == GM_A
    replaced = cli("keys", "token", GM_A, "--replace").stdout.strip()
    assert GemeenteAccess(store).authenticate(token) is None
    assert GemeenteAccess(store).authenticate(replaced) == GM_A
    _fails_cleanly(cli("keys", "token", "GM0000"), "not a known gemeente")


def _seed(world: World, store: KeyStore, secret: PseudonymSecret):
    gone, kept = pseudonymise(BSN, secret), pseudonymise(OTHER_BSN, secret)
    rows = [world.row(GM_A, gone), world.row(GM_B, gone), world.row(GM_A, kept)]
    ExchangeWriter(store).put_wrapped_keys(rows)
    return gone, kept, rows


def test_erase_by_bsn_asks_first_and_never_shows_the_bsn(cli, world: World, store: KeyStore,
                                                         secret: PseudonymSecret, db_url: str) -> None:
    gone, kept, rows = _seed(world, store, secret)
    access = GemeenteAccess(store)
    refused = cli("erase", "--bsn", BSN, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert f"Erase {gone}: delete 2 key row(s) at {GM_A}, {GM_B}" in refused.output
    assert access.release(GM_A, [rows[0].ref], PURPOSE, policy.trace_from(None)) == [rows[0]]

    done = cli("erase", "--bsn", BSN, input="y\n")
    assert done.exit_code == 0, done.output
    assert f"erased {gone}: 2 key row(s) deleted" in done.output
    assert f"forget notices pending for: {GM_A}, {GM_B}" in done.output
    trace = policy.trace_from(None)
    assert access.release(GM_A, [rows[0].ref, rows[2].ref], PURPOSE, trace) == [KeyRowState.ERASED, rows[2]]
    assert access.release(GM_B, [rows[1].ref], PURPOSE, trace) == [KeyRowState.ERASED]
    (audit,) = KeyAdmin(store).audit_records(gone)
    assert audit.actor.startswith("cli")

    again = cli("erase", "--pseudonym", gone, "--yes")
    assert again.exit_code == 0 and "already erased" in again.output
    for result in (refused, done, again):
        assert BSN not in result.output
    assert_no_personal_data(db_url, refused.output, done.output, again.output)


def test_erase_reads_the_bsn_from_a_hidden_prompt_and_by_pseudonym_with_yes(cli, world: World, store: KeyStore,
                                                                            secret: PseudonymSecret) -> None:
    gone, kept, _ = _seed(world, store, secret)
    hidden = cli("erase", "--bsn", "-", input=f"{BSN}\ny\n")
    assert hidden.exit_code == 0, hidden.output
    assert BSN not in hidden.output and f"erased {gone}" in hidden.output
    by_pseudonym = cli("erase", "--pseudonym", kept, "--yes")
    assert by_pseudonym.exit_code == 0 and f"erased {kept}: 1 key row(s) deleted" in by_pseudonym.output


def test_erase_errors_are_one_line_without_the_value(cli, tmp_path: Path) -> None:
    _fails_cleanly(cli("erase", "--yes"), "exactly one of --bsn or --pseudonym")
    _fails_cleanly(cli("erase", "--bsn", BSN, "--pseudonym", "p1:" + "a" * 32, "--yes"), "exactly one")
    bad = cli("erase", "--bsn", "123456789", "--yes")
    _fails_cleanly(bad, "not a valid BSN")
    assert "123456789" not in bad.output
    _fails_cleanly(cli("erase", "--pseudonym", BSN, "--yes"), "not a pseudonym")
    assert BSN not in cli("erase", "--pseudonym", BSN, "--yes").output
    no_key = CliRunner(env={"HERSTELBUS_KEYSTORE_URL": f"sqlite:///{tmp_path / 'k.sqlite'}",
                            "HERSTELBUS_PSEUDONYM_KEY_FILE": ""}).invoke(main, ["erase", "--bsn", BSN, "--yes"])
    _fails_cleanly(no_key, "HERSTELBUS_PSEUDONYM_KEY_FILE")
    (tmp_path / "short.key").write_text("c2hvcnQ=")
    short = CliRunner(env={"HERSTELBUS_KEYSTORE_URL": f"sqlite:///{tmp_path / 'k.sqlite'}",
                           "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp_path / "short.key")}).invoke(
        main, ["erase", "--bsn", BSN, "--yes"])
    _fails_cleanly(short, "pseudonym_secret_too_short")
    unreachable = CliRunner(env={"HERSTELBUS_KEYSTORE_URL": "postgresql+psycopg://u:pw@127.0.0.1:1/x"}).invoke(
        main, ["keys", "token", GM_A])
    _fails_cleanly(unreachable, "key store postgresql+psycopg://u:***@127.0.0.1:1/x failed")
