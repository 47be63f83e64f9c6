"""`herstelbus deadletter list | show | redrive` on the real broker and router (issue 7).

Two inputs are dead-lettered by the real router: bytes that are no event (MARKER_ONGELDIG) and an
overdracht with a BSN that fails the 11-proef (BSN_ONGELDIG; its sealed original holds a person's
data). They are listed and shown without that data; ``show --open`` describes the original with
the ops key (and a wrong key is one line naming the dead letter). No fix makes these bytes valid,
so the redrive shows the path end to end: the originals go back to their source topic and
partition (same key, value and headers plus ``herstel_redrive``), the router gives each copy its
own receipt (INVALID again) and new dead letter; a second redrive sends nothing. A real fix would
be a released contract version or a fixed router bug, after which the copy is routed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from herstelbus.connectors.uht.publish import publish
from herstelbus.core import contracts
from herstelbus.core.privacy import generate_gemeente_key, private_key_to_pem
from herstelbus.core.topology import AUDIT, DEADLETTER, OVERDRACHT, STATUS
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of
from tests.integration.router_world import AMSTERDAM, World, _event, start_router

pytestmark = pytest.mark.kafka


def herstelbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def receipts_for(world: World, positions: set[tuple], proc: subprocess.Popen | None = None) -> dict[tuple, dict]:
    """The router's receipt of each input position, once all are there."""
    seen = world.read(STATUS, lambda s: (proc is not None and proc.poll() is not None) or positions <= {
        bron_of(contracts.decode(m.value)[1]) for m in s})
    found = {}
    for message in seen:
        receipt = contracts.decode(message.value)[1]
        if bron_of(receipt) in positions:
            found[bron_of(receipt)] = receipt
    assert set(found) == positions, "no receipt for some inputs"
    return found


def letters_at(world: World, offsets: set[int]) -> dict[int, dict]:
    seen = world.read(DEADLETTER, lambda s: offsets <= {m.offset for m in s}, timeout=60)
    return {m.offset: contracts.decode(m.value)[1] for m in seen if m.offset in offsets}


def ops_world(bootstrap: str, tmp: Path) -> tuple[World, dict[str, str]]:
    """A router world (Amsterdam has a key) whose ops hold the private key (ops.pem) and a wrong
    one (other.pem); the env of an ops command."""
    provision(bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp, bootstrap, gemeenten=(AMSTERDAM,))
    (tmp / "ops.pem").write_bytes(private_key_to_pem(world.ops))
    (tmp / "other.pem").write_bytes(private_key_to_pem(generate_gemeente_key()))
    return world, {**world.env, "HERSTELBUS_OPS_PRIVATE_KEY_FILE": str(tmp / "ops.pem")}


def dossiernummer() -> str:
    return f"UHT-2024-{uuid.uuid4().int % 10**6:06d}"


@pytest.fixture(scope="module")
def redriven(kafka, tmp_path_factory: pytest.TempPathFactory):
    world, env = ops_world(kafka.bootstrap, tmp_path_factory.mktemp("deadletter"))
    tmp = world.tmp
    event = _event("overdracht_volledig", dossiernummer=dossiernummer())
    _, record = contracts.parse_json_event(event)
    record["persoon"]["bsn"] = "123456789"  # fails the 11-proef: the wire format takes it, the router not
    t0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    marker = b"\x00 geen avro " + uuid.uuid4().hex.encode()

    router = start_router(world, tmp / "router.log")
    try:
        (invalid,) = publish(kafka.bootstrap, [("overdracht", record)])
        (kapot,) = world.publish([marker])
        first = receipts_for(world, {invalid, kapot}, router)
        letters = letters_at(world, {first[p]["doel"]["offset"] for p in (invalid, kapot)})
        ids = {name: str(letters[first[p]["doel"]["offset"]]["deadletter_id"])
               for name, p in (("invalid", invalid), ("kapot", kapot))}
        out = {
            "list": herstelbus(env, "deadletter", "list", "--since", t0.isoformat()),
            "list_json": herstelbus(env, "deadletter", "list", "--reason", "BSN_ONGELDIG", "--json"),
            "show": herstelbus(env, "deadletter", "show", ids["invalid"]),
            "open": herstelbus(env, "deadletter", "show", ids["invalid"], "--open"),
            "wrong_key": herstelbus({**env, "HERSTELBUS_OPS_PRIVATE_KEY_FILE": str(tmp / "other.pem")},
                                    "deadletter", "show", ids["invalid"], "--open"),
            "no_key": herstelbus({**env, "HERSTELBUS_OPS_PRIVATE_KEY_FILE": ""}, "deadletter", "redrive",
                                 ids["invalid"]),
            "dry": herstelbus(env, "deadletter", "redrive", ids["invalid"], ids["kapot"], "--dry-run"),
        }
        actor = f"ops-test-{uuid.uuid4().hex[:8]}"
        out["redrive"] = herstelbus(env, "deadletter", "redrive", ids["invalid"], ids["kapot"], "--actor", actor)
        assert out["redrive"].returncode == 0, out["redrive"].stderr[-3000:]
        audit = [r for r in (contracts.decode(m.value)[1] for m in world.read(AUDIT, lambda s: sum(
            contracts.decode(m.value)[1]["actor"] == actor for m in s) >= 3, timeout=60)) if r["actor"] == actor]
        copies = {str(r["event_id"]) if r["event_id"] else "kapot": (r["topic"], r["aantallen"]["kopie.partitie"],
                                                                    r["aantallen"]["kopie.offset"])
                  for r in audit if r["actie"] == "redrive.kopie"}
        second = receipts_for(world, set(copies.values()), router)
        out["again"] = herstelbus(env, "deadletter", "redrive", ids["invalid"], ids["kapot"], "--actor", actor)
        out["again_reason"] = herstelbus(env, "deadletter", "redrive", "--reason", "MARKER_ONGELDIG",
                                         "--since", t0.isoformat())
    finally:
        assert stop(router, timeout_s=30) == 0, (tmp / "router.log").read_text()[-3000:]
    sources = {(m.topic, m.partition, m.offset): m for m in world.read(
        OVERDRACHT, lambda s: {invalid, kapot, *copies.values()} <= {(m.topic, m.partition, m.offset) for m in s})}
    yield {"world": world, "event": event, "ids": ids, "first": first, "out": out, "audit": audit, "copies": copies,
           "second": second, "sources": sources, "positions": {"invalid": invalid, "kapot": kapot},
           "record": record, "actor": actor}
    world.store.close()


def test_list_shows_codes_positions_and_sizes_without_personal_data(redriven) -> None:
    ids, out, pos = redriven["ids"], redriven["out"], redriven["positions"]
    listed = out["list"]
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:] if line.split()[0] in ids.values()}
    assert set(rows) == set(ids.values())
    invalid = rows[ids["invalid"]]
    assert invalid[2:5] == ["router", "BSN_ONGELDIG", "/".join(map(str, pos["invalid"]))]
    assert invalid[5:7] == ["overdracht", redriven["event"]["event_id"]] and int(invalid[7]) > 500
    assert rows[ids["kapot"]][3:5] == ["MARKER_ONGELDIG", "/".join(map(str, pos["kapot"]))]
    as_json = json.loads(out["list_json"].stdout)
    (mine,) = [r for r in as_json["deadletters"] if r["deadletter_id"] == ids["invalid"]]
    assert mine["codes"] == ["BSN_ONGELDIG"] and mine["bron"]["offset"] == pos["invalid"][2]


def test_show_and_open_describe_without_personal_data_and_a_wrong_key_is_one_line(redriven) -> None:
    ids, out = redriven["ids"], redriven["out"]
    assert out["show"].returncode == 0, out["show"].stderr[-2000:]
    assert "fouten         BSN_ONGELDIG at persoon.bsn" in out["show"].stdout
    assert f"event_id       {redriven['event']['event_id']}" in out["show"].stdout
    opened = out["open"].stdout
    assert out["open"].returncode == 0, out["open"].stderr[-2000:]
    assert "contract now   overdracht, INVALID: BSN_ONGELDIG at persoon.bsn" in opened
    assert f"ce_id          {redriven['event']['event_id']}" in opened
    assert (out["wrong_key"].returncode, out["wrong_key"].stdout) == (1, "")
    assert out["wrong_key"].stderr.startswith(f"herstelbus: error: deadletter {ids['invalid']}: the ops private key "
                                              "does not open its original")
    assert len(out["wrong_key"].stderr.splitlines()) == 1 and "Traceback" not in out["wrong_key"].stderr
    assert out["no_key"].returncode == 1 and out["no_key"].stderr == (
        "herstelbus: error: ops private key not configured: set HERSTELBUS_OPS_PRIVATE_KEY_FILE "
        "(herstelbus dev up writes .herstelbus/dev/ops.pem)\n")


def test_no_personal_data_in_any_output(redriven) -> None:
    event = redriven["event"]
    output = "".join(p.stdout + p.stderr for p in redriven["out"].values())
    for value in (event["persoon"]["bsn"], "123456789", event["persoon"]["achternaam"], event["persoon"]["voornamen"],
                  event["dossiernummer"], event["email"], event["adres"]["postcode"]):
        assert value not in output


def test_redrive_sends_the_originals_back_and_each_gets_its_own_receipt(redriven) -> None:
    ids, out, copies, sources = redriven["ids"], redriven["out"], redriven["copies"], redriven["sources"]
    assert out["dry"].returncode == 0 and out["dry"].stdout.startswith(
        "redrive (dry run): 2 would be sent again (")
    lines = out["redrive"].stdout.splitlines()
    assert lines[0].startswith("redrive: 2 sent again to their source topic (")
    event_id = redriven["event"]["event_id"]
    for name, key in (("invalid", event_id), ("kapot", "kapot")):
        original, copy = sources[redriven["positions"][name]], sources[copies[key]]
        assert (copy.topic, copy.partition) == (original.topic, original.partition)
        assert (copy.key, copy.value) == (original.key, original.value)
        assert copy.headers == [*original.headers, ("herstel_redrive", ids[name].encode())]
        assert f"  {ids[name]}  {'/'.join(map(str, redriven['positions'][name]))} -> " \
               f"{'/'.join(map(str, copies[key]))}" in out["redrive"].stdout
    # The router judged the copies as new input: INVALID again (nothing was fixed), new dead letters.
    second = redriven["second"]
    assert {r["status"] for r in second.values()} == {"INVALID"}
    assert second[copies[event_id]]["reden"] == "BSN_ONGELDIG" and str(second[copies[event_id]]["event_id"]) == event_id
    assert second[copies[event_id]]["doel"] != redriven["first"][redriven["positions"]["invalid"]]["doel"]


def test_a_second_redrive_sends_nothing(redriven) -> None:
    ids, out = redriven["ids"], redriven["out"]
    again = out["again"]
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.startswith("redrive: 0 sent again to their source topic (")
    for name in ("invalid", "kapot"):
        assert f"  {ids[name]}  skipped AL_OPNIEUW_AANGEBODEN" in again.stdout
    # By reason: the first dead letter was re-driven, the second is that redrive's outcome.
    by_reason = out["again_reason"].stdout
    assert by_reason.startswith("redrive: 0 sent again"), by_reason + out["again_reason"].stderr[-2000:]
    assert f"  {ids['kapot']}  skipped AL_OPNIEUW_AANGEBODEN" in by_reason
    assert "skipped UITKOMST_VAN_REDRIVE" in by_reason


def test_every_run_and_copy_is_audited(redriven) -> None:
    audit, actor, ids = redriven["audit"], redriven["actor"], redriven["ids"]
    runs = [r for r in audit if r["actie"] == "redrive"]
    kopieen = [r for r in audit if r["actie"] == "redrive.kopie"]
    assert len(runs) == 1 and len(kopieen) == 2
    (run,) = runs
    assert (run["component"], run["resultaat"], run["topic"]) == ("ops", "GESLAAGD", DEADLETTER)
    assert run["aantallen"]["gekozen"] == 2 and run["aantallen"]["opnieuw_aangeboden"] == 2
    assert str(run["audit_id"]) in redriven["out"]["redrive"].stdout
    assert {r["reden"] for r in kopieen} == {"BSN_ONGELDIG", "MARKER_ONGELDIG"}
    assert all(r["actor"] == actor and r["topic"] == OVERDRACHT for r in kopieen)
    assert len(ids) == 2
