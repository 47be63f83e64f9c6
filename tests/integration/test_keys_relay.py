"""`herstelbus keys relay` on the real broker: an erasure's audit record reaches herstel.audit.v1
(with the subject's pseudonym and counts, never a personal value), each row once; the long-running
relay forwards what ops do later and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from herstelbus.core import contracts
from herstelbus.core.topology import AUDIT, topic_specs
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from herstelbus.settings import get_settings
from herstelbus.topics import provision
from tests.integration.kafka_read import read_until
from tests.unit.keystore.kit import BSN, GM_A, GM_B, World

pytestmark = pytest.mark.kafka


def _herstelbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _audit(bootstrap: str, audit_ids: set[str]) -> dict[str, dict]:
    def decoded(messages: list) -> dict[str, dict]:
        return {str(r["audit_id"]): r for r in (contracts.decode(m.value)[1] for m in messages)}

    found = decoded(read_until(bootstrap, AUDIT, lambda seen: audit_ids <= decoded(seen).keys(), timeout=60))
    return {i: r for i, r in found.items() if i in audit_ids}


def test_erasure_and_token_audits_reach_the_audit_topic_once(kafka, tmp_path: Path) -> None:
    provision(kafka.bootstrap, [s for s in topic_specs([], get_settings().topic_policy()) if s.name == AUDIT], 1)
    world = World()
    db_url = f"sqlite:///{tmp_path / 'keystore.sqlite'}"
    store = KeyStore.open(db_url)
    ExchangeWriter(store).put_wrapped_keys([world.row(GM_A, world.subject()), world.row(GM_B, world.subject())])
    admin = KeyAdmin(store)
    env = {"HERSTELBUS_KEYSTORE_URL": db_url}

    erase = _herstelbus(env, "erase", "--pseudonym", world.subject(), "--yes")
    assert erase.returncode == 0, erase.stderr
    [erased] = [r for r in admin.audit_records() if r.action == "subject_erased"]

    first = _herstelbus(env, "keys", "relay", "--once")
    assert first.returncode == 0, first.stderr
    assert "1 audit record(s) forwarded" in first.stdout
    record = _audit(kafka.bootstrap, {erased.audit_id})[erased.audit_id]
    assert (record["component"], record["actie"], record["resultaat"]) == ("sleutelkluis", "subject_erased", "GESLAAGD")
    assert record["subject"] == world.subject()
    assert record["aantallen"] == {"deleted_key_rows": 2, "forget_notices": 2}
    assert record["actor"].startswith("cli")

    again = _herstelbus(env, "keys", "relay", "--once")
    assert again.returncode == 0 and "0 audit record(s) forwarded" in again.stdout

    # the long-running relay forwards what ops do after it started, then stops on SIGTERM
    log_path = tmp_path / "relay.log"
    with open(log_path, "wb") as log:
        relay = subprocess.Popen([sys.executable, "-m", "herstelbus", "keys", "relay", "--interval", "0.5"],
                                 env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    try:
        token = _herstelbus(env, "keys", "token", GM_A)
        assert token.returncode == 0, token.stderr
        [issued] = [r for r in admin.audit_records() if r.action == "api_token_issued"]
        record = _audit(kafka.bootstrap, {issued.audit_id})[issued.audit_id]
        assert (record["gemeentecode"], record["aantallen"]) == (GM_A, {"revoked": 0})
        deadline = time.monotonic() + 30
        while admin.unrelayed_audit_records() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert admin.unrelayed_audit_records() == []
    finally:
        relay.send_signal(signal.SIGTERM)
        code = relay.wait(timeout=30)
    text = log_path.read_text()
    assert code == 0, text
    assert "audit_relay_stopped" in text
    assert len([m for m in read_until(kafka.bootstrap, AUDIT, lambda seen: False, timeout=3)
                if str(contracts.decode(m.value)[1]["audit_id"]) == erased.audit_id]) == 1
    for output in (erase.stdout, erase.stderr, first.stdout, first.stderr, text):
        assert BSN not in output
    store.close()
