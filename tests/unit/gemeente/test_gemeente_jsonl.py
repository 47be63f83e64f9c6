"""The jsonl sink: the issue's line shape, idempotent by event_id across restarts, torn tails cut."""

from __future__ import annotations

import json

import pytest

from herstelbus.connectors.gemeente.jsonl import JsonlSink
from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.sinks import SinkFout, open_sink
from herstelbus.core.contracts import to_json

from .kit import GM, Exchange, event, geopend


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


def test_sequence_gaps_per_dossier_across_restarts(tmp_path) -> None:
    ex = Exchange()
    ouder = event("overdracht", volgnummer=1)
    d = ouder["dossiernummer"]
    partner = event("pauzeknop", dossiernummer=d, volgnummer=2)
    ouder3 = event("erkenning", bsn=ouder["persoon"]["bsn"], dossiernummer=d, volgnummer=3)
    partner5 = event("pauzeknop", bsn=partner["persoon"]["bsn"], dossiernummer=d, volgnummer=5)
    opener = Opener(GM, ex.keyring(), ex.kluis)
    sink = JsonlSink(tmp_path, GM)
    assert sink.schrijf(opener.open_batch([ex.message("overdracht", ouder), ex.message("pauzeknop", partner)])
                        ).gaten == ()  # two persons, one dossier: 1, 2
    sink.close()
    sink = JsonlSink(tmp_path, GM)  # the dossier's last volgnummer comes back from the file
    assert sink.schrijf(opener.open_batch([ex.message("erkenning", ouder3)])).gaten == ()
    (gat,) = sink.schrijf(opener.open_batch([ex.message("pauzeknop", partner5)])).gaten
    assert (gat.event_id, gat.subject, gat.verwacht, gat.gekregen, gat.soort) == (
        str(partner5["event_id"]), ex.subject(partner5), 4, 5, "gat")
    sink.close()
    assert d not in repr(gat)


def test_a_failed_write_leaves_the_sequence_state_as_it_was(tmp_path) -> None:
    first = geopend(volgnummer=1)
    second = geopend(dossiernummer=first.data["dossiernummer"], volgnummer=2)
    sink = JsonlSink(tmp_path, GM)
    sink.schrijf([first])
    real, sink._fh = sink._fh, _Failing()
    with pytest.raises(SinkFout):
        sink.schrijf([second])
    sink._fh = real
    assert sink.schrijf([second]).gaten == ()  # written now, and still the next one: no te_laat
    sink.close()


class _Failing:
    def write(self, _data: bytes) -> None:
        raise OSError(28, "No space left on device")


def test_a_foreign_file_is_not_overwritten(tmp_path) -> None:
    (tmp_path / f"{GM}.jsonl").write_text("geen json\n")
    with pytest.raises(SinkFout, match="line 1"):
        JsonlSink(tmp_path, GM)


@pytest.mark.parametrize("spec", ["jsonl", "jsonl:", "ftp:x", "webhook:ftp://x", "sql:geen-url"])
def test_unknown_or_malformed_sinks_are_clear_errors(spec: str) -> None:
    with pytest.raises(SinkFout):
        open_sink(spec, GM)
