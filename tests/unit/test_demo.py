"""The demo's and the dev stack's parts that run without a broker: counting receipts, choosing the
gemeenten, reading what a connector wrote, waiting on the acks store, the status table, stopping."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from herstelbus import demo
from herstelbus.acks.state import AcksStore
from herstelbus.core.acks import Doel
from herstelbus.devstack import ARGV, READY, SERVICES, DevStack, _wait_gone
from herstelbus.errors import HerstelbusError
from herstelbus.settings import Settings


def _receipt(event_id: str, *codes: str) -> dict:
    return {"status": "ROUTED", "reden": None, "event_id": event_id,
            "doelen": [{"gemeentecode": c, "reden": "WOONGEMEENTE"} for c in codes]}


def test_receipts_counted_per_gemeente_with_their_event_ids() -> None:
    summary = demo.Summary()
    for i in range(3):
        demo._count(summary, _receipt(f"e{i}", "GM0363"))
    demo._count(summary, _receipt("e9", "GM0014", "GM0363"))
    demo._count(summary, _receipt("f1", "GM0014"))
    demo._count(summary, {"status": "DUPLICATE", "reden": "EVENT_ID_AL_GEROUTEERD", "event_id": "e0", "doelen": None})
    assert [code for code, _ in demo._ranked(summary)] == ["GM0363", "GM0014"]
    assert summary.routed_ids["GM0014"] == {"e9", "f1"}
    assert summary.status == {"ROUTED": 5, "DUPLICATE": 1}


def test_appended_reads_only_what_this_run_wrote(tmp_path: Path) -> None:
    jsonl = tmp_path / "GM0363.jsonl"
    jsonl.write_text(json.dumps({"event_id": "old", "type": "overdracht"}) + "\n")
    offset = jsonl.stat().st_size
    with open(jsonl, "a") as fh:
        for event_id, kind in (("a", "pauzeknop"), ("b", "erkenning")):
            fh.write(json.dumps({"event_id": event_id, "type": kind}) + "\n")
    assert demo._appended(jsonl, offset) == [("a", "pauzeknop"), ("b", "erkenning")]
    assert demo._appended(tmp_path / "GM0014.jsonl", 0) == []


class _Store:
    """An acks store whose rows change state as time passes."""

    def __init__(self, states: dict[tuple[str, str], list[str]]) -> None:
        self.states = states

    def get(self, event_id: str, code: str):
        left = self.states.get((event_id, code))
        if not left:
            return None
        return SimpleNamespace(state=left.pop(0) if len(left) > 1 else left[0])


def test_await_states_until_every_row_is_in_a_wanted_state(tmp_path: Path) -> None:
    store = _Store({("a", "GM0363"): ["ROUTED", "ONTVANGEN"], ("b", "GM0363"): ["ONTVANGEN", "VERWERKT"]})
    demo._await_states(store, {("a", "GM0363"): demo.ACKNOWLEDGED, ("b", "GM0363"): {"VERWERKT"}}, 5.0,
                       tmp_path / "acks.log", "acknowledged")


def test_await_states_is_bounded_and_names_the_log(tmp_path: Path) -> None:
    store = _Store({("a", "GM0363"): ["ROUTED"]})
    with pytest.raises(HerstelbusError) as err:
        demo._await_states(store, {("a", "GM0363"): demo.ACKNOWLEDGED, ("x", "GM0363"): demo.ANY}, 0.2,
                           tmp_path / "acks.log", "acknowledged")
    assert "2 of 2 events not acknowledged" in str(err.value) and str(tmp_path / "acks.log") in str(err.value)


def test_status_table_is_the_status_command_output_for_the_chosen_gemeenten(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HERSTELBUS_ACKS_URL", f"sqlite:///{tmp_path / 'acks.sqlite'}")
    now = datetime.now(timezone.utc)
    AcksStore.from_settings().put_routed(
        Doel(event_id=f"e{i}", gemeentecode=code, event_type="OVERDRACHT", urgent=False, routed_at=now)
        for i, code in enumerate(["GM0363", "GM0363", "GM0014", "GM0599"]))
    lines = demo.status_table(["GM0363", "GM0014"]).splitlines()
    assert lines[0].split() == ["gemeente", "routed", "ontvangen", "verwerkt", "geweigerd", "overdue", "oudste", "open"]
    assert [line.split()[:2] for line in lines[1:3]] == [["GM0014", "1"], ["GM0363", "2"]]
    assert lines[3] == "  (3 gemeenten in all: herstelbus status)"


def test_dev_stack_runs_the_acks_relay_after_the_router() -> None:
    assert SERVICES.index("acks") > SERVICES.index("router")
    assert ARGV["acks"][-1] == "acks" and ARGV["acks"][0] == "supervise" and READY["acks"] == "Worker ready"


def test_gemeente_env_has_a_working_setup_for_a_connector(tmp_path: Path) -> None:
    stack = DevStack(Settings(data_dir=tmp_path, kafka_port=19092, bootstrap_servers=""))  # not the suite's broker
    stack.home.mkdir(parents=True)
    env = stack.gemeente_env("GM0363")
    assert env["HERSTELBUS_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert env["HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE"] == str(stack.home / "signing.pub.pem")
    assert env["HERSTELBUS_KEYSTORE_API"].startswith("http://127.0.0.1:") and env["HERSTELBUS_GEMEENTE_TOKEN"]
    assert "HERSTELBUS_KEYSTORE_URL" not in env  # a gemeente never gets the exchange's database
    assert stack.gemeente_env("GM0363")["HERSTELBUS_GEMEENTE_TOKEN"] != env["HERSTELBUS_GEMEENTE_TOKEN"]
    assert stack.gemeente_key_dir == stack.home / "gemeenten"


def test_stopping_a_child_of_this_process_does_not_wait_for_the_deadline() -> None:
    # `herstelbus demo` starts the services and stops them: an exited one is a zombie until reaped.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)
    started = time.monotonic()
    assert _wait_gone(proc.pid, time.monotonic() + 10) is False
    assert time.monotonic() - started < 2


def test_a_process_that_does_not_stop_is_killed_at_the_deadline() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert _wait_gone(proc.pid, time.monotonic() + 0.3) is True
