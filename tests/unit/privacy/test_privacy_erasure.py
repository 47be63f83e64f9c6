"""Property 5 (pure part): with a subject's key-store rows erased, their records give the typed
``SubjectErased`` — never a generic crypto error, never ciphertext — while everyone else still opens.
The broker/key-store end-to-end version belongs to the key-store issue."""

from __future__ import annotations

import pytest

from herstelbus.core.privacy import (
    KeyRowState,
    KeyUnavailable,
    SubjectErased,
    WrappedKey,
    key_ref,
    open_event,
    seal_event,
)

GM = "GM0363"


class FakeKeyStore:
    """The key store's contract as the core sees it: a row, or a state."""

    def __init__(self) -> None:
        self.rows: dict = {}
        self.erased: set[str] = set()

    def put(self, row: WrappedKey) -> None:
        self.rows[row.ref] = row

    def erase(self, subject: str) -> None:
        self.erased.add(subject)
        for ref in [r for r in self.rows if r.subject == subject]:
            del self.rows[ref]

    def get(self, ref):
        if ref.subject in self.erased:
            return KeyRowState.ERASED
        return self.rows.get(ref, KeyRowState.MISSING)


def test_erased_subject_is_typed_others_still_open(world) -> None:
    store, topic = FakeKeyStore(), []
    for i in range(6):
        rec, eid, subj = world.record(i)
        s = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
        store.put(s.wrapped_key)
        topic.append((s.record, eid, subj, rec))
    victim = topic[2][2]
    store.erase(victim)

    ring = world.keyring(GM)
    opened, erased = 0, 0
    for sealed, eid, subj, rec in topic:  # "replay from offset 0"
        ref = key_ref(sealed, layout=world.layout, gemeentecode=GM, event_id=eid, subject=subj)
        try:
            plain = open_event(sealed, layout=world.layout, keyring=ring, event_id=eid, subject=subj, key=store.get(ref))
        except SubjectErased as e:
            assert subj == victim and e.reason == "subject_erased"
            erased += 1
            continue
        assert subj != victim and plain == rec
        opened += 1
    victims = sum(1 for t in topic if t[2] == victim)
    assert erased == victims and opened == len(topic) - victims


@pytest.mark.parametrize(
    "state, reason",
    [(KeyRowState.MISSING, "key_row_missing"), (KeyRowState.UNREACHABLE, "keystore_unreachable"), (None, "key_row_missing")],
)
def test_missing_row_or_store_down_fails_closed(world, state, reason) -> None:
    rec, eid, subj = world.record()
    s = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    with pytest.raises(KeyUnavailable) as exc:
        open_event(s.record, layout=world.layout, keyring=world.keyring(GM), event_id=eid, subject=subj, key=state)
    assert exc.value.reason == reason


def test_wrapped_key_is_never_in_the_record(world) -> None:
    rec, eid, subj = world.record()
    s = seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj)
    for v in s.record.values():
        assert not (isinstance(v, bytes) and s.wrapped_key.wrapped in v)
