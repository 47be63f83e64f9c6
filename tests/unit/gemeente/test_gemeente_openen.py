"""One poll batch opened as the gemeente: every record gives one typed result, one key request."""

from __future__ import annotations

import dataclasses

import pytest

from herstelbus.connectors.gemeente.openen import Opener
from herstelbus.connectors.gemeente.resultaat import Geopend, Geweigerd, Weigercode, weigercode
from herstelbus.core.contracts import EnvelopeError, WireError
from herstelbus.core.privacy import (
    ContextMismatch, GemeenteKey, KeyUnavailable, MalformedAnnouncement, MalformedSealedField, SignatureInvalid, SignatureMissing,
    SubjectErased, Tampered, UnknownKeyEpoch, generate_signing_key, new_key_epoch,
)

from .kit import GM, NOW, Exchange, Message, event, tamper


@pytest.mark.parametrize(("exc", "code"), [
    (SubjectErased(), Weigercode.SUBJECT_ERASED),
    (Tampered(), Weigercode.TAMPERED),
    (MalformedSealedField("trailing_bytes"), Weigercode.TAMPERED),
    (SignatureInvalid(), Weigercode.SIGNATURE_INVALID),
    (SignatureMissing(), Weigercode.SIGNATURE_INVALID),
    (MalformedAnnouncement(), Weigercode.SIGNATURE_INVALID),
    (UnknownKeyEpoch(), Weigercode.UNKNOWN_KEY_EPOCH),
    (KeyUnavailable("key_row_missing"), Weigercode.KEY_UNAVAILABLE),
    (ContextMismatch("other_gemeente"), Weigercode.NOT_ADDRESSED_HERE),
    (WireError("MARKER_ONGELDIG"), Weigercode.UNDECODABLE),
    (EnvelopeError("HEADER_ONTBREEKT", "ce_id"), Weigercode.UNDECODABLE),
])
def test_every_failure_maps_to_one_refusal_code(exc: Exception, code: Weigercode) -> None:
    assert weigercode(exc) is code


def test_a_bug_is_not_hidden_as_a_refusal() -> None:
    with pytest.raises(KeyError):
        weigercode(KeyError("x"))


def test_batch_opens_every_record_with_one_key_request() -> None:
    ex = Exchange()
    records = [event("overdracht"), event("pauzeknop"), event("erkenning")]
    messages = [ex.message(t, r) for t, r in zip(("overdracht", "pauzeknop", "erkenning"), records)]
    opener = Opener(GM, ex.keyring(), ex.kluis)
    results = opener.open_batch(messages)
    assert ex.kluis.requests == ["epochs", "keys"]
    for record, result, type_ in zip(records, results, ("overdracht", "pauzeknop", "erkenning")):
        assert isinstance(result, Geopend)
        assert result.data == record  # every field of the event as UHT published it
        assert (result.type, result.gemeentecode, result.routing_reason, result.sequence) == (
            type_, GM, "WOONGEMEENTE", record["volgnummer"])
        assert result.subject == ex.subject(record) and result.priority == "normaal" and not result.replay
        assert str(record["persoon"]["bsn"]) not in repr(result)
    opener.open_batch([ex.message("overdracht", event())])
    assert ex.kluis.requests == ["epochs", "keys", "keys"]  # the verified announcement is cached


def test_priority_and_replay_headers_reach_the_result() -> None:
    ex = Exchange()
    message = ex.message("overdracht", event(), headers=[("ce_prioriteit", b"urgent"), ("ce_replay", b"true")])
    (result,) = Opener(GM, ex.keyring(), ex.kluis).open_batch([message])
    assert result.priority == "urgent" and result.replay


def test_erased_tampered_foreign_and_garbage_are_refused_never_skipped() -> None:
    ex, other = Exchange(), Exchange("GM0599")
    erased, tampered, ok = event(), event(), event()
    ex.kluis.erased.add(ex.subject(erased))
    t_msg = tamper(ex.message("overdracht", tampered))
    foreign = other.message("overdracht", event())
    garbage = Message(foreign.topic, 0, 99, None, b"\x00 geen avro", [])
    batch = [ex.message("overdracht", erased), t_msg, foreign, garbage, ex.message("overdracht", ok)]
    results = Opener(GM, ex.keyring(), ex.kluis).open_batch(batch)
    assert [type(r) for r in results] == [Geweigerd, Geweigerd, Geweigerd, Geweigerd, Geopend]
    assert [r.code for r in results[:4]] == [Weigercode.SUBJECT_ERASED, Weigercode.TAMPERED,
                                              Weigercode.NOT_ADDRESSED_HERE, Weigercode.UNDECODABLE]
    assert results[0].event_id == str(erased["event_id"]) and results[0].subject == ex.subject(erased)
    assert results[3].event_id is None and results[3].positie.offset == 99
    assert all(r.reden == "ONLEESBAAR" for r in results[:4])


def test_an_announcement_not_signed_by_the_exchange_is_never_used() -> None:
    ex = Exchange()
    forged = new_key_epoch(GemeenteKey(GM, ex.private.public_key(), NOW), generate_signing_key(), NOW)
    ex.kluis.announcements[ex.epoch.kek_id] = dataclasses.replace(
        ex.epoch.announcement, signature=forged.announcement.signature).to_bytes()
    opener = Opener(GM, ex.keyring(), ex.kluis)
    (result,) = opener.open_batch([ex.message("overdracht", event())])
    assert result.code is Weigercode.SIGNATURE_INVALID
    opener.open_batch([ex.message("overdracht", event())])
    assert ex.kluis.requests.count("epochs") == 1  # a bad announcement is not fetched again


def test_a_record_whose_epoch_the_store_does_not_know_is_refused() -> None:
    ex = Exchange()
    ex.kluis.announcements.clear()
    (result,) = Opener(GM, ex.keyring(), ex.kluis).open_batch([ex.message("overdracht", event())])
    assert result.code is Weigercode.UNKNOWN_KEY_EPOCH
