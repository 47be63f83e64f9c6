"""The pure part of `herstelbus deadletter` (issue 7): what a dead letter shows (never personal data),
opening its sealed original, which originals a redrive sends and why others are skipped, the audit
records; and the command's one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from herstelbus.core import contracts
from herstelbus.core.acks import Doel, unroutable_for_ops
from herstelbus.core.ops import deadletter as d
from herstelbus.core.ops.reconcile import Receipt
from herstelbus.core.ops.replay import OngeldigeInvoer
from herstelbus.core.privacy import generate_gemeente_key, generate_signing_key, private_key_to_pem
from herstelbus.core.privacy.keys import key_id_for
from herstelbus.core.privacy.ops import frame_record, seal_for_ops
from herstelbus.core.routing import deadletter_record, overgeslagen_record, unroutable_record
from herstelbus.core.routing.refs import KafkaRef

VECTORS = Path(__file__).resolve().parents[1] / "contracts" / "vectors"
OVERDRACHT, DL_TOPIC, UNR_TOPIC = "uht.overdracht.v1", "herstel.deadletter.v1", "herstel.unroutable.v1"
ACKS = "gemeente.GM0363.acks.v1"
NOW = dt.datetime(2025, 6, 2, 10, 0, tzinfo=dt.timezone.utc)
OPS = generate_gemeente_key()
EVENT = json.loads((VECTORS / "overdracht_volledig.json").read_text())
PII = (EVENT["persoon"]["bsn"], EVENT["persoon"]["achternaam"], EVENT["dossiernummer"], EVENT["email"])
_offsets = iter(range(10**9))


def original(bsn: str | None = None, extra_headers: list | None = None) -> tuple[bytes, bytes, list]:
    event = EVENT
    record = contracts.json_to_record("overdracht", {k: v for k, v in event.items() if k != "type"})
    if bsn is not None:  # the wire format takes it; validation refuses it
        record["persoon"]["bsn"] = bsn
    value = contracts.encode("overdracht", record)
    headers = contracts.headers_for("overdracht", record, source=contracts.source_urn("00000001003214345000", "uht"))
    return event["dossiernummer"].encode(), value, headers + (extra_headers or [])


def letter(*, kind: str = "deadletter", fouten=(("SCHEMA_ONBEKEND", "persoon.bsn"),), bron: KafkaRef | None = None,
           event_id: str | None = None, at: dt.datetime = NOW, record: tuple | None = None, topic: str | None = None,
           component: str = "router", overrides: dict | None = None, key=OPS) -> d.DeadLetter:
    """A dead letter as the router writes it (sealed for ``key``), encoded and read back."""
    bron = bron or KafkaRef(OVERDRACHT, 0, next(_offsets))
    event_id = event_id or str(uuid.uuid4())
    if kind == "deadletter":
        draft = deadletter_record(list(fouten), bron=bron, origineel=b"", sleutel_id="-", at=at, event_id=event_id,
                                  event_type="overdracht", component=component)
    elif kind == "unroutable":
        draft = unroutable_record("overdracht", event_id, fouten[0][0], bron=bron, origineel=b"", sleutel_id="-", at=at)
    else:
        draft = overgeslagen_record("pauzeknop", event_id, [("GM0457", "SPLITSING")], bron=bron, origineel=b"",
                                    sleutel_id="-", at=at)
    sealed, key_id = seal_for_ops(frame_record(*(record or original())), key.public_key(), draft["deadletter_id"])
    rec = {**draft, "origineel": sealed, "sleutel_id": key_id, **(overrides or {})}
    _, decoded = contracts.decode(contracts.encode("deadletter", rec))
    topic = topic or (DL_TOPIC if kind == "deadletter" else UNR_TOPIC)
    return d.uit_record(decoded, KafkaRef(topic, 0, next(_offsets)))


def rcpt(event_id: str, status: str = "ROUTED", bron: KafkaRef | None = None) -> Receipt:
    return Receipt(KafkaRef("uht.status.v1", 0, next(_offsets)), str(uuid.uuid4()), event_id, status, bron, 0)


# -- what is shown ---------------------------------------------------------------------------------------
def test_list_and_show_carry_codes_positions_and_size_never_personal_data() -> None:
    dl = letter(fouten=[("SCHEMA_ONBEKEND", "persoon.bsn"), ("TE_LANG", "adres.straat")])
    assert dl.codes == ("SCHEMA_ONBEKEND", "TE_LANG") and dl.bron.topic == OVERDRACHT
    shown = d.tabel([dl]) + json.dumps(d.rij(dl)) + d.details(dl)
    for value in PII:
        assert value not in shown
    assert str(len(dl.origineel)) in d.tabel([dl]).splitlines()[1]
    assert d.rij(dl)["grootte"] == len(dl.origineel) and d.rij(dl)["bron"]["topic"] == OVERDRACHT
    assert "SCHEMA_ONBEKEND at persoon.bsn; TE_LANG at adres.straat" in d.details(dl)
    assert d.tabel([]).split() == list(d._KOLOMMEN)


def test_fields_the_contract_refuses_as_read_are_withheld() -> None:
    bsn = EVENT["persoon"]["bsn"]
    dl = letter(overrides={"melding": f"bsn {bsn} is fout",
                           "fouten": [{"reden": "X", "pad": f"persoon {bsn}"}], "component": "naam met spatie"})
    assert dl.melding is None and dl.fouten is None and dl.component == d.WITHHELD
    assert bsn not in d.details(dl) + d.tabel([dl]) + json.dumps(d.rij(dl))
    assert "(withheld: refused by the contract)" in d.details(dl)


def test_each_dead_letter_once_in_topic_order() -> None:
    a, b = letter(), letter()
    again = d.DeadLetter(**{**a.__dict__, "positie": KafkaRef(DL_TOPIC, 0, 10**9)})  # at-least-once copy
    assert d.verzamel([b, again, a]) == [a, b]


def test_selection_by_ids_reason_component_and_time() -> None:
    dl = letter(fouten=[("SCHEMA_ONBEKEND", "x"), ("TE_LANG", "y")])
    assert d.Selectie(reden="TE_LANG").past(dl) and not d.Selectie(reden="LEEG").past(dl)
    assert d.Selectie(component="router").past(dl) and not d.Selectie(component="acks").past(dl)
    ms = int(NOW.timestamp() * 1000)
    assert d.Selectie(since_ms=ms).past(dl) and not d.Selectie(since_ms=ms + 1).past(dl)
    ids = d.lees_ids([dl.deadletter_id.upper()])
    assert d.Selectie(ids).past(dl) and d.Selectie(ids).ontbrekend([dl]) == []
    assert d.Selectie(frozenset({str(uuid.UUID(int=5))})).ontbrekend([dl]) == [str(uuid.UUID(int=5))]
    with pytest.raises(OngeldigeInvoer) as refused:
        d.lees_ids([EVENT["persoon"]["bsn"]])
    assert EVENT["persoon"]["bsn"] not in str(refused.value)


# -- the sealed original -------------------------------------------------------------------------------------
def test_the_original_opens_with_the_ops_key_and_a_wrong_key_names_the_dead_letter() -> None:
    dl = letter()
    assert d.open_origineel(dl, OPS) == original()
    other = generate_gemeente_key()
    with pytest.raises(d.NietTeOpenen) as refused:
        d.open_origineel(dl, other)
    assert dl.deadletter_id in str(refused.value) and key_id_for(other.public_key()) in str(refused.value)
    moved = d.DeadLetter(**{**dl.__dict__, "deadletter_id": str(uuid.uuid4())})  # bound to its own id
    with pytest.raises(d.NietTeOpenen):
        d.open_origineel(moved, OPS)


def test_describing_the_original_shows_its_shape_and_the_contract_check_never_a_value() -> None:
    text = d.beschrijf(original(), NOW)
    assert "ce_id, " in text.replace("headers        ", "") and f"ce_id          {EVENT['event_id']}" in text
    assert "overdracht, valid" in text
    text += d.beschrijf(original(bsn="123456789"), NOW) + d.beschrijf((b"k", b"\x00 geen avro", [("naam met spatie", b"x")]), NOW)
    assert "INVALID: BSN_ONGELDIG at persoon.bsn" in text and "unreadable: MARKER_ONGELDIG" in text
    assert "headers        ?" in text
    for value in (*PII, "123456789"):
        assert value not in text


def test_a_copy_carries_its_origin_once() -> None:
    headers = [("ce_id", b"1"), ("herstel_redrive", b"oud")]
    assert d.kopie_headers(d.REDRIVE, headers, "nieuw") == [("ce_id", b"1"), ("herstel_redrive", b"nieuw")]
    assert d.kopie_headers(d.REROUTE, [], "a/0/1") == [("herstel_reroute", b"a/0/1")]


# -- what a redrive sends ------------------------------------------------------------------------------------
def _sent(besluiten) -> dict[str, str | None]:
    return {b.kandidaat.herkomst: b.overslaan for b in besluiten}


def test_redrive_sends_what_was_not_sent_before_and_skips_with_a_reason() -> None:
    fresh = letter()
    gewist = letter(fouten=[("SUBJECT_GEWIST", "")])
    routed_since = letter()
    older, newer = letter(), None
    newer = letter(event_id=older.event_id, at=NOW + dt.timedelta(minutes=1))
    ack = letter(component="acks", bron=KafkaRef(ACKS, 0, 3), event_id=routed_since.event_id)
    nowhere = letter(bron=KafkaRef("gemeente.GM0363.events.v1", 0, 1))
    letters = [fresh, gewist, routed_since, older, newer, ack, nowhere]
    st = d.stand([rcpt(routed_since.event_id)], [])
    assert _sent(d.kies_redrive(letters, d.Selectie(), st)) == {
        fresh.deadletter_id: None, gewist.deadletter_id: d.GEWIST, routed_since.deadletter_id: d.AL_GEROUTEERD,
        older.deadletter_id: d.DUBBEL, newer.deadletter_id: None,
        ack.deadletter_id: None,  # an ack goes back to its gemeente's acks topic; its event id was routed, of course
        nowhere.deadletter_id: d.GEEN_BRON}
    # Named: the erased person's original still never goes out.
    assert _sent(d.kies_redrive(letters, d.Selectie(frozenset({gewist.deadletter_id})), st)) == {
        gewist.deadletter_id: d.GEWIST}


def test_a_second_redrive_skips_what_the_first_sent_and_its_outcome_unless_named() -> None:
    first = letter()
    (besluit,) = d.kies_redrive([first], d.Selectie(), d.Stand())
    copy = KafkaRef(OVERDRACHT, 0, 900)
    record = d.kopie_audit(d.REDRIVE, besluit.kandidaat, copy, actor="cli:ops", at=NOW)
    assert contracts.validate("audit", record) == []
    assert record["aantallen"] == {"bron.partitie": 0, "bron.offset": first.bron.offset, "kopie.partitie": 0,
                                   "kopie.offset": 900}
    assert (record["actie"], record["reden"], record["topic"], record["event_id"]) == (
        "redrive.kopie", "SCHEMA_ONBEKEND", OVERDRACHT, first.event_id)
    kopie = d.kopie_uit_audit(contracts.decode(contracts.encode("audit", record))[1])
    assert kopie == d.Kopie(d.REDRIVE, record["audit_id"], first.event_id, copy)
    outcome = letter(bron=copy, event_id=first.event_id, at=NOW + dt.timedelta(minutes=1))  # INVALID again
    st = d.stand([rcpt(first.event_id, "INVALID", copy)], [kopie])
    assert _sent(d.kies_redrive([first, outcome], d.Selectie(), st)) == {
        first.deadletter_id: d.DUBBEL, outcome.deadletter_id: d.UITKOMST}
    assert _sent(d.kies_redrive([first], d.Selectie(frozenset({first.deadletter_id})), st)) == {
        first.deadletter_id: d.AL_OPNIEUW}
    again = d.Selectie(frozenset({outcome.deadletter_id}))  # after another fix, by name
    assert _sent(d.kies_redrive([first, outcome], again, st)) == {outcome.deadletter_id: None}


def test_a_copy_without_a_receipt_is_on_its_way_until_retention_took_it() -> None:
    event_id = str(uuid.uuid4())
    copy = KafkaRef(OVERDRACHT, 1, 50)
    kopie = d.Kopie(d.REROUTE, str(uuid.uuid4()), event_id, copy)
    assert event_id in d.stand([], [kopie]).onderweg
    assert event_id not in d.stand([rcpt(event_id, "UNROUTABLE", copy)], [kopie]).onderweg
    assert event_id not in d.stand([], [kopie], {(OVERDRACHT, 1): 51}).onderweg
    assert d.stand([rcpt(event_id, "DUPLICATE")], []).gerouteerd == {event_id}


def test_run_audit_record_and_summary() -> None:
    a, b = letter(), letter(fouten=[("SUBJECT_GEWIST", "")])
    besluiten = d.kies_redrive([a, b], d.Selectie(), d.Stand())
    tellingen = d.Tellingen.van(5, besluiten)
    tellingen.opnieuw = 1
    record = d.run_audit(audit_id=str(uuid.uuid4()), at=NOW, actor="cli:ops", actie=d.REDRIVE, topic=DL_TOPIC,
                         tellingen=tellingen)
    assert contracts.validate("audit", record) == []
    assert record["aantallen"] == {"gelezen": 5, "gekozen": 2, "opnieuw_aangeboden": 1, "overgeslagen.subject_gewist": 1}
    assert (record["resultaat"], d.run_audit(**{**dict(audit_id=record["audit_id"], at=NOW, actor="a", actie="redrive",
                                                       topic=None, tellingen=d.Tellingen()), "reden": "BROKERFOUT"})[
        "resultaat"]) == ("GESLAAGD", "MISLUKT")
    text = d.samenvatting(d.REDRIVE, tellingen, besluiten, {a.deadletter_id: KafkaRef(OVERDRACHT, 0, 7)})
    lines = text.splitlines()
    assert lines[0] == "redrive: 1 sent again to their source topic (5 read, 2 selected, 1 skipped)"
    assert lines[1] == f"  {a.deadletter_id}  {OVERDRACHT}/0/{a.bron.offset} -> {OVERDRACHT}/0/7  event {a.event_id}  SCHEMA_ONBEKEND"
    assert lines[2] == f"  {b.deadletter_id}  skipped SUBJECT_GEWIST  event {b.event_id}"
    assert lines[3].startswith("  SUBJECT_GEWIST: the person was erased")
    assert d.samenvatting(d.REDRIVE, tellingen, besluiten, {}, dry_run=True).startswith(
        "redrive (dry run): 1 would be sent again")


# -- the adapter's one-line errors ---------------------------------------------------------------------------
def test_ops_private_key_fails_closed_in_one_line(tmp_path, monkeypatch) -> None:
    from herstelbus.ops.common import OpsFout, OpsSettings, ops_private_key

    monkeypatch.delenv("HERSTELBUS_OPS_PRIVATE_KEY_FILE", raising=False)
    with pytest.raises(OpsFout, match="^ops private key not configured: set HERSTELBUS_OPS_PRIVATE_KEY_FILE"):
        ops_private_key()
    with pytest.raises(OpsFout, match="^ops private key unreadable at .*missing.pem"):
        ops_private_key(OpsSettings(ops_private_key_file=tmp_path / "missing.pem"))
    (tmp_path / "signing.pem").write_bytes(private_key_to_pem(generate_signing_key()))
    with pytest.raises(OpsFout, match="is no ops private key in PEM"):
        ops_private_key(OpsSettings(ops_private_key_file=tmp_path / "signing.pem"))
    (tmp_path / "ops.pem").write_bytes(private_key_to_pem(OPS))
    monkeypatch.setenv("HERSTELBUS_OPS_PRIVATE_KEY_FILE", str(tmp_path / "ops.pem"))
    assert key_id_for(ops_private_key().public_key()) == key_id_for(OPS.public_key())


def test_a_wrong_key_stops_the_run_before_anything_is_sent() -> None:
    from herstelbus.ops.common import OpsFout
    from herstelbus.ops.deadletter import open_all

    dl = letter()
    besluiten = d.kies_redrive([dl], d.Selectie(), d.Stand())
    (zending,) = open_all(besluiten, d.REDRIVE, OPS)
    assert (zending.key, zending.value) == original()[:2]
    assert zending.headers[-1] == ("herstel_redrive", dl.deadletter_id.encode())
    with pytest.raises(OpsFout, match=f"^deadletter {dl.deadletter_id}: the ops private key does not open its "
                                      f"original .*; nothing was sent$"):
        open_all(besluiten, d.REDRIVE, generate_gemeente_key())


def test_redrive_without_a_selection_or_with_a_bad_reason_refuses_in_one_line() -> None:
    from herstelbus.cli import main

    result = CliRunner().invoke(main, ["deadletter", "redrive"])
    assert (result.exit_code, result.output) == (1, "herstelbus: error: redrive: name dead letter ids, a --reason, "
                                                    "or --all\n")
    assert CliRunner().invoke(main, ["deadletter", "redrive", "--reason", "kapot"]).exit_code == 2
    result = CliRunner().invoke(main, ["deadletter", "redrive", "999990019"])
    assert result.exit_code == 1 and "999990019" not in result.output


def test_acks_records_without_an_original_are_never_sent() -> None:
    doel = Doel(str(uuid.uuid4()), "GM0363", "OVERDRACHT", NOW, bron=KafkaRef(OVERDRACHT, 2, 8))
    record = unroutable_for_ops(doel, ack_bron=KafkaRef(ACKS, 0, 4), at=NOW)
    dl = d.uit_record(contracts.decode(contracts.encode("deadletter", record))[1], KafkaRef(UNR_TOPIC, 0, 1))
    assert dl.origineel == b"" and dl.component == "acks"
    (besluit,) = d.beslis([d.kandidaat(dl)], d.Stand(), actie=d.REROUTE)
    assert besluit.overslaan == d.GEEN_ORIGINEEL


def test_erasures_unchecked_means_nothing_sent(monkeypatch, tmp_path) -> None:
    """Without the key store named explicitly, the default would be a fresh, empty SQLite store that
    lists no erasures: redrive and reroute refuse to send instead (fail closed)."""
    from types import SimpleNamespace

    import pytest

    from herstelbus.core.privacy import PseudonymSecret
    from herstelbus.ops.common import OpsFout, Zending
    from herstelbus.ops.deadletter import without_erased

    secret = tmp_path / "pseudonym.key"
    secret.write_text(PseudonymSecret.generate().export_base64())
    monkeypatch.setenv("HERSTELBUS_PSEUDONYM_KEY_FILE", str(secret))
    monkeypatch.delenv("HERSTELBUS_KEYSTORE_URL", raising=False)
    monkeypatch.setenv("HERSTELBUS_DATA_DIR", str(tmp_path))
    zending = Zending(SimpleNamespace(kandidaat=SimpleNamespace(herkomst="x")), None, b"", [])
    with pytest.raises(OpsFout, match="nothing was sent"):
        without_erased([], [zending])
    assert not (tmp_path / "keystore.sqlite").exists()
