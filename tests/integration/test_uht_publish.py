"""`herstelbus uht publish FILE` on the real broker: exactly the valid events arrive, each once,
keyed by dossiernummer with CloudEvents headers; a dry run publishes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from herstelbus.core.contracts import decode, parse_cloudevent_headers, parse_json_event
from tests.integration.uht_kit import fresh_events, provision_topics, read_ingest
from tests.unit.uht.test_uht_bestand import write_csv, write_jsonl

pytestmark = pytest.mark.kafka


def _cli(kafka, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", "uht", *args], env={**os.environ, **kafka.env},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)


def _valid_ids(events: list[dict]) -> set[str]:
    valid = set()
    for e in events:
        try:
            parse_json_event(e)
        except Exception:
            continue
        valid.add(e["event_id"])
    return valid


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_publish_sends_exactly_the_valid_events_once(kafka, tmp_path, fmt) -> None:
    provision_topics(kafka.bootstrap)
    events = fresh_events(400, seed=31)
    path = (write_jsonl if fmt == "jsonl" else write_csv)(tmp_path / f"batch.{fmt}", events)
    valid = _valid_ids(events)
    invalid = {e["event_id"] for e in events} - valid
    assert invalid and len(valid) < len(events) - len(invalid)  # rejected and duplicate lines present

    dry = _cli(kafka, "publish", str(path), "--dry-run")
    assert dry.returncode == 1 and "dry run: nothing published" in dry.stdout, dry.stderr
    assert not set(read_ingest(kafka.bootstrap)) & valid

    result = _cli(kafka, "publish", str(path))
    assert result.returncode == 1, result.stderr  # some lines rejected: exit 1, the valid ones published
    assert f"published {len(valid)} events" in result.stdout
    by_id = read_ingest(kafka.bootstrap)
    assert {i: len(by_id[i]) for i in valid} == {i: 1 for i in valid}
    assert not set(by_id) & invalid
    first = {e["event_id"]: e for e in reversed(events)}
    for event_id in list(valid)[:50]:
        (message,) = by_id[event_id]
        assert message.key == first[event_id]["dossiernummer"].encode()
        assert message.topic == f"uht.{first[event_id]['type']}.v1"
        assert parse_cloudevent_headers(message.headers).id == event_id
        assert str(decode(message.value)[1]["event_id"]) == event_id


def test_all_valid_file_exits_0(kafka, tmp_path) -> None:
    provision_topics(kafka.bootstrap)
    events = [e for e in fresh_events(40, seed=32) if e["event_id"] in _valid_ids([e])]
    unique = list({e["event_id"]: e for e in events}.values())
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in unique))
    result = _cli(kafka, "publish", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    by_id = read_ingest(kafka.bootstrap)
    assert all(len(by_id[e["event_id"]]) == 1 for e in unique)
