"""Property 6: rotation. New epochs go to the newest key after an overlap; records under the old key
stay readable while its private key exists; nothing already written changes."""

from __future__ import annotations

import datetime as dt

import pytest

from herstelbus.core.privacy import (
    DEFAULT_OVERLAP,
    GemeenteKey,
    InvalidIdentifier,
    KeyUnavailable,
    OpeningKeyring,
    choose_wrapping_key,
    generate_gemeente_key,
    needs_new_epoch,
    new_key_epoch,
    open_event,
    seal_event,
)
from privacy_fixtures import NOW

GM = "GM0363"
DAY = dt.timedelta(days=1)


def test_choice_waits_for_overlap_then_takes_newest() -> None:
    old, new = generate_gemeente_key(), generate_gemeente_key()
    k_old = GemeenteKey(GM, old.public_key(), NOW - 100 * DAY)
    k_new = GemeenteKey(GM, new.public_key(), NOW)
    other = GemeenteKey("GM0599", generate_gemeente_key().public_key(), NOW - 200 * DAY)
    keys = [k_new, other, k_old]
    assert choose_wrapping_key(keys, GM, NOW - DAY) == k_old  # new key not valid yet
    assert choose_wrapping_key(keys, GM, NOW + DAY) == k_old  # in overlap
    assert choose_wrapping_key(keys, GM, NOW + DEFAULT_OVERLAP) == k_new
    assert choose_wrapping_key(keys, GM, NOW + 30 * DAY, overlap=dt.timedelta(0)) == k_new
    assert choose_wrapping_key(list(reversed(keys)), GM, NOW + DEFAULT_OVERLAP) == k_new  # order-free


def test_first_key_and_expired_old_key_used_without_waiting() -> None:
    only = GemeenteKey(GM, generate_gemeente_key().public_key(), NOW)
    assert choose_wrapping_key([only], GM, NOW) == only
    expired = GemeenteKey(GM, generate_gemeente_key().public_key(), NOW - 100 * DAY, valid_until=NOW)
    assert choose_wrapping_key([expired, only], GM, NOW + DAY) == only


def test_no_valid_key_fails_closed() -> None:
    expired = GemeenteKey(GM, generate_gemeente_key().public_key(), NOW - 100 * DAY, valid_until=NOW)
    with pytest.raises(KeyUnavailable) as exc:
        choose_wrapping_key([expired], GM, NOW + DAY)
    assert exc.value.reason == "no_gemeente_key"
    with pytest.raises(KeyUnavailable):
        choose_wrapping_key([expired], "GM0599", NOW - DAY)
    with pytest.raises(InvalidIdentifier):
        choose_wrapping_key([expired], GM, NOW.replace(tzinfo=None))
    with pytest.raises(InvalidIdentifier):
        GemeenteKey(GM, generate_gemeente_key().public_key(), NOW, valid_until=NOW)


def test_rotation_end_to_end(world) -> None:
    sk = world.signing_key
    old_priv, new_priv = world.gemeente_keys[GM], generate_gemeente_key()
    k_old = next(k for k in world.directory if k.gemeentecode == GM)
    k_new = GemeenteKey(GM, new_priv.public_key(), NOW + DAY)
    keys = [k_old, k_new]

    t1 = NOW + 2 * DAY  # in overlap: still the old key
    chosen1 = choose_wrapping_key(keys, GM, t1)
    ep1 = new_key_epoch(chosen1, sk, t1)
    t2 = NOW + DAY + DEFAULT_OVERLAP + dt.timedelta(minutes=5)
    chosen2 = choose_wrapping_key(keys, GM, t2)
    assert chosen1 == k_old and chosen2 == k_new
    assert needs_new_epoch(ep1, chosen2, t2)  # key changed → new epoch
    assert not needs_new_epoch(ep1, chosen1, t1)
    assert needs_new_epoch(ep1, chosen1, t1 + dt.timedelta(hours=2))  # window over
    assert needs_new_epoch(None, chosen1, t1)
    ep2 = new_key_epoch(chosen2, sk, t2)
    assert ep2.recipient_key_id == k_new.key_id != ep1.recipient_key_id

    rec1, eid1, subj1 = world.record(1)
    rec2, eid2, subj2 = world.record(2)
    s1 = seal_event(rec1, layout=world.layout, epoch=ep1, event_id=eid1, subject=subj1)
    s2 = seal_event(rec2, layout=world.layout, epoch=ep2, event_id=eid2, subject=subj2)

    ring = OpeningKeyring(GM, [old_priv, new_priv], [sk.public_key()])
    for ep in (ep1, ep2):
        ring.add(ep.announcement.to_bytes())
    L = world.layout
    assert open_event(s1.record, layout=L, keyring=ring, event_id=eid1, subject=subj1, key=s1.wrapped_key) == rec1
    assert open_event(s2.record, layout=L, keyring=ring, event_id=eid2, subject=subj2, key=s2.wrapped_key) == rec2

    # Once the gemeente destroys the old private key, old-epoch records no longer open (typed), new ones do.
    ring.remove_private_key(k_old.key_id)
    with pytest.raises(KeyUnavailable) as exc:
        open_event(s1.record, layout=L, keyring=ring, event_id=eid1, subject=subj1, key=s1.wrapped_key)
    assert exc.value.reason == "no_private_key"
    assert open_event(s2.record, layout=L, keyring=ring, event_id=eid2, subject=subj2, key=s2.wrapped_key) == rec2
