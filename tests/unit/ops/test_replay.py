"""The pure part of `herstelbus replay`: range resolution, filter decisions, pacing, the audit record."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from herstelbus.core import contracts
from herstelbus.core.ops import replay as r

SOURCE = contracts.source_urn("00000001003214345000", "herstelbus")
NOW = datetime(2025, 6, 2, 10, 0, tzinfo=timezone.utc)


def _headers(record_type: str = "gerouteerde_overdracht", event_id: str | None = None) -> list[tuple[str, bytes]]:
    return contracts.cloudevent_headers(record_type, id=event_id or str(uuid.uuid4()), source=SOURCE, time=NOW,
                                        subject="p1:" + "a" * 32, sequence=1)


# -- --from / --to ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, grens", [
    ("120", r.Offsets(alle=120)),
    (" 0 ", r.Offsets(alle=0)),
    ("20250602", r.Offsets(alle=20250602)),  # digits are an offset, never a basic-format date
    ("0:10,2:7", r.Offsets(per_partitie={0: 10, 2: 7})),
    ("2025-06-02", r.Tijdstip(int(datetime(2025, 6, 2, tzinfo=timezone.utc).timestamp() * 1000))),
    ("2025-06-02T10:00:00Z", r.Tijdstip(int(NOW.timestamp() * 1000))),
    ("2025-06-02T10:00", r.Tijdstip(int(NOW.timestamp() * 1000))),  # no offset: UTC
    ("2025-06-02T12:00:00+02:00", r.Tijdstip(int(NOW.timestamp() * 1000))),
])
def test_bounds_parse(text: str, grens: r.Grens) -> None:
    assert r.lees_grens(text, "--from") == grens


@pytest.mark.parametrize("text", ["", "gisteren", "-5", "0:1,0:2", "1:", "0:1;1:2", "2025-13-01"])
def test_bad_bounds_are_refused_naming_the_option(text: str) -> None:
    with pytest.raises(r.OngeldigeInvoer, match="^--to"):
        r.lees_grens(text, "--to")


def test_time_bound_prints_as_iso() -> None:
    assert str(r.lees_grens("2025-06-02T10:00:00Z", "--from")) == "2025-06-02T10:00:00+00:00"


def test_partitions_every_one_or_those_named() -> None:
    assert r.partities(r.Offsets(alle=3), {2, 0, 1}) == [0, 1, 2]
    assert r.partities(r.Tijdstip(0), [0, 1]) == [0, 1]
    assert r.partities(r.Offsets(per_partitie={1: 4}), [0, 1, 2]) == [1]
    with pytest.raises(r.OngeldigeInvoer, match="no partition 5"):
        r.partities(r.Offsets(per_partitie={5: 0}), [0, 1])


BEGIN, EIND = {0: 0, 1: 50}, {0: 100, 1: 80}


def test_offsets_are_inclusive_and_clamped_to_what_exists() -> None:
    b = r.bereik(r.Offsets(alle=10), r.Offsets(alle=19), begin=BEGIN, eind=EIND)
    assert b == [r.Bereik(0, 10, 20), r.Bereik(1, 50, 50, afgekapt=True)]  # 1: 10..19 is past retention
    assert [x.aantal for x in b] == [10, 0]
    (only,) = r.bereik(r.Offsets(per_partitie={0: 95}), r.Offsets(alle=500), begin={0: 0}, eind={0: 100})
    assert only == r.Bereik(0, 95, 100)  # never beyond the end at start: the copies are not read again


def test_default_to_is_the_end_at_start_and_from_beyond_it_is_empty() -> None:
    assert r.bereik(r.Offsets(alle=60), None, begin=BEGIN, eind=EIND) == [r.Bereik(0, 60, 100), r.Bereik(1, 60, 80)]
    assert r.bereik(r.Offsets(alle=200), None, begin=BEGIN, eind=EIND) == [r.Bereik(0, 100, 100), r.Bereik(1, 80, 80)]


def test_time_bounds_use_the_brokers_offsets_and_none_means_the_end() -> None:
    van, tot = r.Tijdstip(1_000), r.Tijdstip(2_000)
    b = r.bereik(van, tot, begin=BEGIN, eind=EIND, van_tijd={0: 40, 1: None}, tot_tijd={0: 70, 1: None})
    assert b == [r.Bereik(0, 40, 70), r.Bereik(1, 80, 80)]  # --to TIME: written before it
    b = r.bereik(van, None, begin=BEGIN, eind=EIND, van_tijd={0: 40, 1: 55})
    assert b == [r.Bereik(0, 40, 100), r.Bereik(1, 55, 80)]
    mixed = r.bereik(van, r.Offsets(alle=49), begin=BEGIN, eind=EIND, van_tijd={0: 40, 1: 55})
    assert mixed == [r.Bereik(0, 40, 50), r.Bereik(1, 55, 55)]


def test_to_per_partition_applies_where_named_only() -> None:
    b = r.bereik(r.Offsets(alle=10), r.Offsets(per_partitie={0: 14}), begin={0: 0, 1: 0}, eind={0: 100, 1: 30})
    assert b == [r.Bereik(0, 10, 15), r.Bereik(1, 10, 30)]


@pytest.mark.parametrize("van, tot", [
    (r.Tijdstip(2_000), r.Tijdstip(1_000)),
    (r.Offsets(alle=20), r.Offsets(alle=19)),
    (r.Offsets(per_partitie={0: 20}), r.Offsets(per_partitie={0: 5})),
    (r.Offsets(alle=20), r.Offsets(per_partitie={0: 5})),
])
def test_to_before_from_is_refused(van: r.Grens, tot: r.Grens) -> None:
    with pytest.raises(r.OngeldigeInvoer, match="--to is before --from"):
        r.bereik(van, tot, begin={0: 0}, eind={0: 100}, van_tijd={0: 0}, tot_tijd={0: 0})


def test_to_naming_a_partition_that_is_not_replayed_is_refused() -> None:
    with pytest.raises(r.OngeldigeInvoer, match="partition 1 is not replayed"):
        r.bereik(r.Offsets(per_partitie={0: 0}), r.Offsets(per_partitie={1: 5}), begin={0: 0}, eind={0: 9})


# -- which records -----------------------------------------------------------------------------------------
def test_type_comes_from_the_ce_type_header() -> None:
    assert r.soort(_headers("gerouteerde_pauzeknop")) == "pauzeknop"
    assert r.soort(_headers("ontvangstbevestiging")) is None  # not a routed event
    assert r.soort([("ce_type", b"\xff")]) is None and r.soort([]) is None


def test_filter_by_type_and_once_per_event_id() -> None:
    f = r.Filter(["erkenning", "pauzeknop"])
    erkenning, overdracht = _headers("gerouteerde_erkenning"), _headers("gerouteerde_overdracht")
    assert f.kies(overdracht) is r.Keuze.ANDER_TYPE
    assert f.kies(erkenning) is r.Keuze.OPNIEUW
    assert f.kies(r.replay_headers(erkenning)) is r.Keuze.DUBBEL  # an earlier replay's copy, same id
    assert f.kies([("ce_type", b"iets")]) is r.Keuze.ANDER_TYPE


def test_without_type_every_routed_record_goes_and_one_without_id_too() -> None:
    f = r.Filter()
    assert f.kies(_headers("gerouteerde_overdracht")) is r.Keuze.OPNIEUW
    assert f.kies([]) is r.Keuze.OPNIEUW and f.kies([]) is r.Keuze.OPNIEUW  # cannot be matched: as it is


def test_unknown_type_is_refused() -> None:
    with pytest.raises(r.OngeldigeInvoer, match="--type: unknown statusbericht"):
        r.Filter(["statusbericht"])


def test_replay_header_is_added_once_and_the_rest_kept_in_order() -> None:
    original = _headers() + [("ce_prioriteit", b"urgent")]
    copy = r.replay_headers(original)
    assert copy == [*original, ("ce_replay", b"true")]
    again = r.replay_headers([("CE_REPLAY", b"1"), *original])
    assert again == copy  # a copy of a copy: one ce_replay, or the envelope refuses it
    ce = contracts.parse_cloudevent_headers(r.replay_headers(copy))
    assert ce.extensions == {"prioriteit": "urgent", "replay": "true"}  # what the gemeente connector reads


# -- pacing -------------------------------------------------------------------------------------------
def test_rate_spaces_events_and_catches_up_after_a_slow_stretch() -> None:
    assert r.Tempo().wacht(1_000, 0.0) == 0.0
    tempo = r.Tempo(10)
    assert tempo.wacht(0, 0.0) == 0.0  # the first goes at once
    assert tempo.wacht(10, 0.5) == pytest.approx(0.5)  # 10 sent: the 11th not before 1.0 s
    assert tempo.wacht(5, 2.0) == 0.0  # behind schedule: no wait
    assert r.Tempo(0.5).wacht(1, 0.0) == pytest.approx(2.0)


@pytest.mark.parametrize("rate", [0, -1])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(r.OngeldigeInvoer, match="--rate"):
        r.Tempo(rate)


# -- the audit record and the summary ---------------------------------------------------------------------
def _tellingen(**kw: int) -> r.Tellingen:
    t = r.Tellingen()
    for keuze in [r.Keuze.OPNIEUW] * 4 + [r.Keuze.ANDER_TYPE] * 2 + [r.Keuze.DUBBEL]:
        t.tel(keuze)
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def test_counting() -> None:
    t = _tellingen()
    assert (t.gelezen, t.gekozen, t.ander_type, t.dubbel, t.opnieuw_afgeleverd) == (7, 4, 2, 1, 0)


def test_outcome() -> None:
    assert r.resultaat(_tellingen(opnieuw_afgeleverd=4), None) == "GESLAAGD"
    assert r.resultaat(_tellingen(opnieuw_afgeleverd=2), r.AFGEBROKEN) == "GEDEELTELIJK"
    assert r.resultaat(_tellingen(), r.BROKERFOUT) == "MISLUKT"


def _audit(**kw) -> dict:
    args = dict(audit_id=str(uuid.uuid4()), at=NOW, actor="cli:beheer", gemeentecode="GM0363",
                topic="gemeente.GM0363.events.v1", tellingen=_tellingen(opnieuw_afgeleverd=4),
                bereiken=[r.Bereik(0, 10, 17)])
    return r.audit_record(**{**args, **kw})


def test_audit_record_is_a_valid_contract_record_with_counts_and_range() -> None:
    record = _audit()
    assert contracts.validate("audit", record) == []
    assert (record["actie"], record["component"], record["resultaat"], record["reden"]) == (
        "replay", "ops", "GESLAAGD", None)
    assert record["aantallen"] == {"gelezen": 7, "opnieuw_afgeleverd": 4, "ander_type": 2, "dubbel": 1,
                                   "p0.van": 10, "p0.tot": 17}
    assert record["event_id"] is None and record["subject"] is None
    decoded = contracts.decode(contracts.encode("audit", record))[1]
    assert {**decoded, "audit_id": str(decoded["audit_id"])} == record
    failed = _audit(reden=r.BROKERFOUT, tellingen=_tellingen())
    assert (failed["resultaat"], failed["reden"]) == ("MISLUKT", "BROKERFOUT")
    assert contracts.validate("audit", failed) == []


def test_audit_ranges_are_left_out_when_they_would_not_fit_the_contract() -> None:
    record = _audit(bereiken=[r.Bereik(p, 0, 1) for p in range(40)])
    assert set(record["aantallen"]) == {"gelezen", "opnieuw_afgeleverd", "ander_type", "dubbel"}
    assert contracts.validate("audit", record) == []


@pytest.mark.parametrize("actor", ["cli:root", "ops.beheerder-07", "svc/replay"])
def test_account_ids_are_accepted(actor: str) -> None:
    r.controleer_audit(_audit(actor=actor))


@pytest.mark.parametrize("actor", ["j.jansen@uht.example.nl", "Jan Jansen", "", "x" * 129])
def test_e_mail_or_free_text_actor_is_refused_without_echoing_it(actor: str) -> None:
    with pytest.raises(r.OngeldigeInvoer, match="^--actor: expected an account id") as caught:
        r.controleer_audit(_audit(actor=actor))
    assert not actor or actor not in str(caught.value)


def test_summary_line() -> None:
    t = _tellingen(opnieuw_afgeleverd=4)
    bereiken = [r.Bereik(0, 10, 17), r.Bereik(1, 5, 5)]
    assert r.samenvatting("GM0363", t, bereiken, geschreven={0: (200, 203)}) == (
        "replay GM0363: 4 events re-delivered (offsets 0:10-16, 1:none -> 0:200-203; "
        "7 read; 2 of another type; 1 duplicate event id skipped)")
    assert r.samenvatting("GM0363", t, [r.Bereik(0, 3, 10, afgekapt=True)], dry_run=True) == (
        "replay GM0363 (dry run): 4 events would be re-delivered (offsets 0:3-9; 7 read; 2 of another type; "
        "1 duplicate event id skipped; older offsets are past retention)")
    assert r.samenvatting("GM0014", r.Tellingen(opnieuw_afgeleverd=1), [r.Bereik(0, 7, 8)]).startswith(
        "replay GM0014: 1 event re-delivered (offsets 0:7-7;")
    assert r.samenvatting("GM0014", r.Tellingen(), []) == "replay GM0014: 0 events re-delivered (offsets none; 0 read)"
