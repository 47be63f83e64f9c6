"""The jsonl sink: the issue's line shape, idempotent by event_id across restarts, torn tails cut."""

from __future__ import annotations

import json

import pytest

from herstelbus.connectors.gemeente.jsonl import JsonlSink
from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.sinks import SinkFout, open_sink
from herstelbus.core.contracts import to_json

from .kit import GM, Exchange, event


def _opened(n: int = 2, **changes):
    ex = Exchange()
    records = [event("overdracht", **changes) for _ in range(n)]
    return records, Opener(GM, ex.keyring(), ex.kluis).open_batch([ex.message("overdracht", r) for r in records])


def test_line_has_exactly_the_issue_keys_and_data_in_contract_json(tmp_path) -> None:
    records, opened = _opened(1)
    sink = open_sink(f"jsonl:{tmp_path / 'uit'}", GM)
    assert sink.schrijf(opened).nieuw == (opened[0].event_id,)
    sink.close()
    (line,) = (tmp_path / "uit" / f"{GM}.jsonl").read_text().splitlines()
    obj = json.loads(line)
    assert list(obj) == ["event_id", "type", "gemeentecode", "subject", "routing_reason", "sequence", "data"]
    assert obj["data"] == to_json("overdracht", records[0], with_type=False)
    assert (obj["event_id"], obj["type"], obj["gemeentecode"], obj["routing_reason"], obj["sequence"]) == (
        str(records[0]["event_id"]), "overdracht", GM, "WOONGEMEENTE", records[0]["volgnummer"])


def test_idempotent_by_event_id_within_and_across_restarts(tmp_path) -> None:
    _, opened = _opened(2)
    sink = JsonlSink(tmp_path, GM)
    assert len(sink.schrijf(opened[:1]).nieuw) == 1
    sink.close()
    sink = JsonlSink(tmp_path, GM)
    verslag = sink.schrijf(opened)
    assert verslag.dubbel == (opened[0].event_id,) and verslag.nieuw == (opened[1].event_id,)
    assert sink.schrijf(opened).nieuw == ()
    sink.close()
    assert len((tmp_path / f"{GM}.jsonl").read_text().splitlines()) == 2


def test_a_torn_last_line_is_cut_and_written_again(tmp_path) -> None:
    _, opened = _opened(2)
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf(opened[:1])
    sink.close()
    with open(tmp_path / f"{GM}.jsonl", "a") as fh:
        fh.write('{"event_id": "' + opened[1].event_id + '", "da')  # crash mid-append, never committed
    sink = JsonlSink(tmp_path, GM)
    assert sink.schrijf(opened).nieuw == (opened[1].event_id,)
    sink.close()
    assert [json.loads(x)["event_id"] for x in (tmp_path / f"{GM}.jsonl").read_text().splitlines()] == [
        o.event_id for o in opened]


def test_sequence_gap_is_reported_across_restarts(tmp_path) -> None:
    ex = Exchange()
    first = event("overdracht", volgnummer=1)
    third = event("overdracht", bsn=first["persoon"]["bsn"], volgnummer=3)
    opener = Opener(GM, ex.keyring(), ex.kluis)
    sink = JsonlSink(tmp_path, GM)
    assert sink.schrijf(opener.open_batch([ex.message("overdracht", first)])).gaten == ()
    sink.close()
    sink = JsonlSink(tmp_path, GM)
    (gat,) = sink.schrijf(opener.open_batch([ex.message("overdracht", third)])).gaten
    assert (gat.verwacht, gat.gekregen, gat.soort) == (2, 3, "gat")
    sink.close()


def test_a_foreign_file_is_not_overwritten(tmp_path) -> None:
    (tmp_path / f"{GM}.jsonl").write_text("geen json\n")
    with pytest.raises(SinkFout, match="line 1"):
        JsonlSink(tmp_path, GM)


@pytest.mark.parametrize("spec", ["jsonl", "jsonl:", "ftp:x", "webhook:ftp://x", "sql:geen-url"])
def test_unknown_or_malformed_sinks_are_clear_errors(spec: str) -> None:
    with pytest.raises(SinkFout):
        open_sink(spec, GM)
