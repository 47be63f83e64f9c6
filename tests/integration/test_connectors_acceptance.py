"""Issue 6's acceptance test, end to end through the CLI, every component a real process on the real broker:

UHT writes a JSON Lines file of synthetic events for three gemeenten and runs `herstelbus uht publish`;
`herstelbus router` seals and routes them, `herstelbus acks` relays acknowledgements; each gemeente runs
`herstelbus gemeente consume GM --sink jsonl:DIR --ack --once` against the key store's HTTP API. Then:

- each DIR/<GM>.jsonl holds exactly that gemeente's input events, opened, field by field against the
  input (contract field names; rule 5: an overdracht with contactwens NEE arrives without contact details);
- uht.status.v1 holds exactly one ROUTED receipt and one ONTVANGEN relay per event, and nothing else,
  the relay naming the very ack and routed record;
- `herstelbus gemeente ack EVENT_ID --status VERWERKT` moves one event on: a VERWERKT relay on
  uht.status.v1 and `herstelbus status --gemeente GM --json` counting it as verwerkt, no longer ontvangen;
- no personal data of the input in any process's output; every process exits cleanly.

Topics have fixed names shared with the rest of the session, so everything is matched by this run's
event ids (fresh uuids), and the gemeenten are drawn per run from those no other test names.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from herstelbus.acks.settings import SQLITE_FILE
from herstelbus.acks.state import AcksStore
from herstelbus.connectors.gemeente.bevestiging import ack_id
from herstelbus.core import contracts
from herstelbus.core.gemeenten import gemeenten_on
from herstelbus.core.privacy import private_key_to_pem, public_key_to_pem
from herstelbus.core.topology import INGEST, ROUTER_APP_ID, STATUS, gemeente_events_topic
from herstelbus.keystore.store import KeyAdmin
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import read_until, wait_for_line
from tests.integration.keystore_server import running_keystore
from tests.integration.router_world import World, supervised
from tests.integration.uht_kit import fresh_events

pytestmark = pytest.mark.kafka

# Gemeenten other integration tests use by name (and GM9999, unknown): this run stays clear of them.
ELSEWHERE = {"GM0363", "GM0599", "GM0457", "GM0344", "GM0518", "GM1680", "GM9999"}
SYNTHETIC_START = dt.date(2025, 1, 6)  # synthetic.generate's default start: its gemeenten exist then
WAIT_S = 90  # any single wait; the whole test stays well inside pytest-timeout's 300 s
CONTACTGEGEVENS = ("adres", "telefoon", "email")


def _plan(seed: int) -> dict[str, list[dict]]:
    """gemeentecode -> the input events for it, in file order: whole synthetic dossiers (at least
    two per gemeente) of three gemeenten that route to their woongemeente only (no herindeling, VOW,
    buitenland or partner elsewhere), with fresh event ids; the first gemeente has an overdracht with
    contactwens NEE."""
    seen, dossiers = set(), defaultdict(list)
    for event in fresh_events(4000, seed=seed):  # about three dossiers per gemeente
        if event["event_id"] in seen:
            continue  # UHT's duplicate line: `uht publish` sends an event_id once
        try:
            contracts.parse_json_event(event)
        except contracts.InvalidEvent:
            continue  # the generator's broken BSN: not a valid contract event
        seen.add(event["event_id"])
        dossiers[event["dossiernummer"]].append(event)
    bestaand = {g.code for g in gemeenten_on(SYNTHETIC_START)} - ELSEWHERE
    per_gemeente, dossiers_per = defaultdict(list), defaultdict(int)
    for events in dossiers.values():
        gm = events[0]["gemeentecode"]
        if gm in bestaand and all(
                e["gemeentecode"] == gm and e["woonsituatie"] == "BINNENLAND"
                and (e.get("toeslagpartner") or {}).get("gemeentecode", gm) == gm for e in events):
            per_gemeente[gm].extend(events)
            dossiers_per[gm] += 1
    per_gemeente = {gm: events for gm, events in per_gemeente.items() if dossiers_per[gm] >= 2}
    rng = random.Random(seed)
    with_nee = sorted(gm for gm, events in per_gemeente.items()
                      if any(e["type"] == "overdracht" and e["contactwens"] == "NEE" for e in events))
    first = rng.choice(with_nee)
    chosen = [first, *rng.sample(sorted(set(per_gemeente) - {first}), 2)]
    return {gm: per_gemeente[gm] for gm in chosen}


def _expected_data(event: dict) -> dict:
    """What the gemeente must read: the input without its `type`, minus contact details for an
    overdracht with contactwens NEE (rule 5)."""
    data = {k: v for k, v in event.items() if k != "type"}
    if event["type"] == "overdracht" and event["contactwens"] == "NEE":
        data.update(dict.fromkeys(CONTACTGEGEVENS))
    return data


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _statuses(bootstrap: str, ids: set[str], until) -> list[dict]:
    """This run's statusberichten on uht.status.v1, read from the start until ``until(records)``."""
    def ours(seen: list) -> list[dict]:
        out = []
        for m in seen:
            try:
                record_type, record = contracts.decode(m.value)
            except contracts.ContractError:
                continue  # other tests put other things on shared topics
            if record_type == "statusbericht" and str(record.get("event_id")) in ids:
                out.append(record)
        return out
    return ours(read_until(bootstrap, STATUS, lambda seen: until(ours(seen)), timeout=WAIT_S))


def _by_event_status(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    grouped = defaultdict(list)
    for r in records:
        grouped[(str(r["event_id"]), r["status"])].append(r)
    return grouped


def _router_caught_up(bootstrap: str) -> bool:
    """The router's group has committed the end of every ingest partition: whatever the ingest
    topics held (shared with other tests) has been routed."""
    admin, consumer = KafkaAdminClient(bootstrap_servers=bootstrap), KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(t, p) for t in INGEST for p in consumer.partitions_for_topic(t) or ()]
        committed = admin.list_group_offsets({ROUTER_APP_ID: parts}).get(ROUTER_APP_ID, {})
        return all((committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0) >= end
                   for tp, end in consumer.end_offsets(parts).items())
    finally:
        admin.close()
        consumer.close()


def _cli(env: dict, *args: str, timeout: float = WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _start(env: dict, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(supervised(*args), env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait(what: str, condition, timeout: float = WAIT_S, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else f"({path.name}: no output)"


def test_uht_file_to_gemeente_jsonl_acks_and_status(kafka, tmp_path) -> None:
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    seed = random.randrange(1 << 30)  # fresh events per run; in every failure message
    plan = _plan(seed)
    gemeenten = list(plan)
    by_id = {e["event_id"]: (gm, e) for gm, events in plan.items() for e in events}
    ids = set(by_id)
    assert {e["type"] for _, e in by_id.values()} == {"overdracht", "pauzeknop", "erkenning"}, seed

    world = World(tmp_path, kafka.bootstrap, gemeenten=gemeenten)
    env = world.env
    admin = KeyAdmin(world.store)
    tokens = {gm: admin.issue_token(gm, "test") for gm in gemeenten}
    (tmp_path / "signing.pub.pem").write_bytes(public_key_to_pem(world.signing.public_key()))
    for gm, key in world.gemeenten.items():
        (tmp_path / "keys" / gm).mkdir(parents=True)
        (tmp_path / "keys" / gm / f"{gm}.pem").write_bytes(private_key_to_pem(key))
    acks_db = f"sqlite:///{(tmp_path / 'data' / SQLITE_FILE).resolve()}"
    logs = {name: tmp_path / f"{name}.log" for name in ("router", "acks", "keystore")}
    outputs: list[str] = []  # every CLI run's stdout and stderr, for the privacy check
    context = f"seed {seed}, gemeenten {gemeenten}"

    def consume(gm: str, sink_dir: Path, *extra: str) -> subprocess.Popen:
        run_env = {**os.environ, **env, "HERSTELBUS_KEYSTORE_API": keystore_api,
                   "HERSTELBUS_GEMEENTE_TOKEN": tokens[gm],
                   "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(tmp_path / "signing.pub.pem")}
        return subprocess.Popen([sys.executable, "-m", "herstelbus", "gemeente", "consume", gm, "--key-dir",
                                 str(tmp_path / "keys" / gm), "--sink", f"jsonl:{sink_dir}", "--once", *extra],
                                env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)

    def consume_all(sink_dir: Path, *extra: str) -> dict[str, str]:
        """The gemeenten consume side by side; each must exit 0. gemeentecode -> summary line."""
        running = {gm: consume(gm, sink_dir, *extra) for gm in gemeenten}
        summaries = {}
        for gm, proc in running.items():
            try:
                out, err = proc.communicate(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"gemeente consume {gm} did not finish in {WAIT_S} s ({context})\n{err[-3000:]}")
            outputs.extend((out, err))
            assert proc.returncode == 0, f"consume {gm}: exit {proc.returncode} ({context})\n{err[-3000:]}"
            summaries[gm] = out.strip().splitlines()[-1]
        return summaries

    with running_keystore(env, logs["keystore"]) as keystore_api:
        router = _start(env, logs["router"], "router")
        acks = _start(env, logs["acks"], "acks")
        workers = {"router": router, "acks": acks}
        try:
            for name, proc in workers.items():
                try:
                    wait_for_line(logs[name], "Worker ready", timeout=WAIT_S, alive=lambda p=proc: p.poll() is None)
                except AssertionError:
                    pytest.fail(f"{name} not ready (exit {proc.poll()}, {context})\n{_tail(logs[name])}")

            # The gemeenten were up to date before UHT's file: whatever their topics held already
            # (shared with other tests; a backlog on the ingest topics is routed first) is read now,
            # into another directory and without acks, so the run below reads this run's events
            # only and can be held to exactly those.
            _wait("the router through what the ingest topics held", lambda: _router_caught_up(kafka.bootstrap),
                  interval=1)
            for gm, line in consume_all(tmp_path / "eerder").items():
                assert line.startswith(f"{gm}: opened "), line

            # (1) + (2) UHT's file, published as UHT does.
            batch = tmp_path / "uht-batch.jsonl"
            batch.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n"
                                     for events in plan.values() for e in events))
            published = _cli(env, "uht", "publish", str(batch))
            outputs.extend((published.stdout, published.stderr))
            assert published.returncode == 0, f"{context}\n{published.stdout}{published.stderr[-3000:]}"
            assert f"published {len(ids)} events" in published.stdout, published.stdout

            # (3) The router routes every event; the acks worker learns where each went.
            routed = _statuses(kafka.bootstrap, ids, lambda rs: ids <= {str(r["event_id"]) for r in rs
                                                                       if r["status"] == "ROUTED"})
            assert ids <= {str(r["event_id"]) for r in routed if r["status"] == "ROUTED"}, (
                f"not routed in {WAIT_S} s ({context})\n{_tail(logs['router'])}")
            store = AcksStore.open(acks_db)
            try:
                _wait("the acks worker's state for every routed event",
                      lambda: all(store.get(i, by_id[i][0]) is not None for i in ids))

                # (4) Each gemeente consumes, stores in jsonl and acknowledges.
                summaries = consume_all(tmp_path / "uit", "--ack")

                # (6) ROUTED and ONTVANGEN for every event of this run, and nothing else.
                def complete(rs: list[dict]) -> bool:
                    return {(str(r["event_id"]), r["status"]) for r in rs} >= {
                        (i, s) for i in ids for s in ("ROUTED", "ONTVANGEN")}
                statuses = _statuses(kafka.bootstrap, ids, complete)
                assert complete(statuses), f"ONTVANGEN missing ({context})\n{_tail(logs['acks'])}"
                _wait("every event ONTVANGEN in the acks state",
                      lambda: all(store.get(i, by_id[i][0]).state == "ONTVANGEN" for i in ids))

                shown_before = _cli(env, "status", "--json")
                assert shown_before.returncode == 0, shown_before.stderr[-3000:]
                before = json.loads(shown_before.stdout)
                # (7) One event processed: the gemeente says so, UHT hears it, status counts it.
                gm7, event7 = next((gm, e) for gm, events in plan.items() for e in events if e["type"] == "erkenning")
                id7 = event7["event_id"]
                acked = _cli(env, "gemeente", "ack", id7, "--gemeente", gm7, "--status", "VERWERKT")
                outputs.extend((acked.stdout, acked.stderr))
                assert acked.returncode == 0, acked.stderr[-3000:]
                verwerkt_ack_id = acked.stdout.strip()
                statuses = _statuses(kafka.bootstrap, ids, lambda rs: (id7, "VERWERKT") in {
                    (str(r["event_id"]), r["status"]) for r in rs})
                _wait("the VERWERKT state", lambda: store.get(id7, gm7).state == "VERWERKT")
                row_before = next(r for r in before if r["gemeentecode"] == gm7)

                def shown() -> list[dict] | None:
                    done = _cli(env, "status", "--gemeente", gm7, "--json")
                    assert done.returncode == 0, done.stderr[-3000:]
                    rows = json.loads(done.stdout)
                    return rows if rows and rows[0]["verwerkt"] != row_before["verwerkt"] else None
                after = _wait("status --gemeente showing the VERWERKT event", shown, timeout=30, interval=0.5)
            finally:
                store.engine.dispose()
        finally:
            exits = {name: stop(proc, timeout_s=30) for name, proc in workers.items()}
    for name, code in exits.items():
        assert code == 0, f"{name} exited {code} ({context})\n{_tail(logs[name])}"

    # (5) The jsonl files: exactly this run's events of each gemeente, opened, field by field.
    for gm, events in plan.items():
        lines = [json.loads(line) for line in (tmp_path / "uit" / f"{gm}.jsonl").read_text().splitlines()]
        # Each once; in any order (three ingest topics: the router interleaves them).
        assert sorted(line["event_id"] for line in lines) == sorted(e["event_id"] for e in events), (gm, context)
        by_line = {line["event_id"]: line for line in lines}
        assert summaries[gm].startswith(
            f"{gm}: opened {len(events)} ({len(events)} written, 0 already in sink), refused 0, acked {len(events)}"
        ), summaries[gm]
        subjects = defaultdict(set)
        for event in events:
            line = by_line[event["event_id"]]
            where = f"{gm} {event['type']} {event['event_id']} ({context})"
            assert (line["type"], line["gemeentecode"], line["routing_reason"], line["sequence"]) == (
                event["type"], gm, "WOONGEMEENTE", event["volgnummer"]), where
            expected = _expected_data(event)
            assert set(line["data"]) == set(expected), where
            for field, value in expected.items():
                got = line["data"][field]
                if field == "occurred_at":  # the contract's form may drop ".000": the same instant
                    assert _instant(got) == _instant(value), (where, field)
                else:
                    assert got == value, (where, field, got, value)
            assert line["subject"].startswith("p1:"), where
            subjects[event["persoon"]["bsn"]].add(line["subject"])
        # One pseudonym per person, a different one per person.
        assert all(len(s) == 1 for s in subjects.values()), (gm, context)
        assert len(set().union(*subjects.values())) == len(subjects), (gm, context)
    assert any(e["type"] == "overdracht" and e["contactwens"] == "NEE" for e in plan[gemeenten[0]])

    # (6) Per event: one ROUTED receipt to its gemeente alone, one ONTVANGEN relay naming the
    # gemeente's own ack and the routed record; VERWERKT for the one event only.
    grouped = _by_event_status(statuses)
    wanted = {(i, s) for i in ids for s in ("ROUTED", "ONTVANGEN")} | {(id7, "VERWERKT")}
    assert set(grouped) == wanted, (sorted(set(grouped) ^ wanted), context)
    for (event_id, status), records in grouped.items():
        assert len({r["status_id"] for r in records}) == 1, (event_id, status, "two different statusberichten")
    for event_id, (gm, event) in by_id.items():
        receipt = grouped[(event_id, "ROUTED")][0]
        soort = event["type"].upper()
        assert (receipt["event_type"], receipt["bron"]["topic"]) == (soort, f"uht.{event['type']}.v1"), event_id
        assert receipt["geminimaliseerd"] == (event["type"] == "overdracht" and event["contactwens"] == "NEE")
        [doel] = receipt["doelen"]
        assert (doel["gemeentecode"], doel["reden"], doel["topic"]) == (gm, "WOONGEMEENTE", gemeente_events_topic(gm))
        position = {"topic": doel["topic"], "partition": doel["partition"], "offset": doel["offset"]}
        relay = grouped[(event_id, "ONTVANGEN")][0]
        assert (relay["gemeentecode"], relay["event_type"], str(relay["ack_id"]), relay["reden"], relay["doel"]) == (
            gm, soort, ack_id(gm, event_id, "ONTVANGEN"), None, position), event_id
    verwerkt = grouped[(id7, "VERWERKT")][0]
    assert (verwerkt["gemeentecode"], str(verwerkt["ack_id"])) == (gm7, verwerkt_ack_id)
    assert verwerkt["doel"] == grouped[(id7, "ONTVANGEN")][0]["doel"]

    # (7) `herstelbus status`: before, every event of this run counted as ontvangen; after the ack,
    # the one event moved from ontvangen to verwerkt.
    for gm, events in plan.items():
        [row] = [r for r in before if r["gemeentecode"] == gm]
        assert row["routed"] >= len(events) and row["ontvangen"] >= len(events), (row, context)
    [row_after] = after
    assert row_after["gemeentecode"] == gm7
    assert (row_after["verwerkt"], row_after["ontvangen"]) == (
        row_before["verwerkt"] + 1, row_before["ontvangen"] - 1), (row_before, row_after)
    assert row_after["routed"] >= row_before["routed"], (row_before, row_after)

    # No personal data of the input in any process's output.
    output = "".join(outputs) + "".join(p.read_text(errors="replace") for p in logs.values() if p.exists())
    assert "batch_verwerkt" in output and "Worker ready" in output  # the logs are there, and they are clean
    for _, event in by_id.values():
        persons = [event["persoon"], *([event["toeslagpartner"]] if event.get("toeslagpartner") else [])]
        values = [p["bsn"] for p in persons] + [event["dossiernummer"]]
        if event.get("adres"):
            values += [event["adres"]["postcode"]]
        values += [event[k] for k in ("telefoon", "email") if event.get(k)]
        leaked = [v for v in values if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", output)]
        assert not leaked, (event["event_id"], context)
