"""Property 8 (structure, not timing): no public-key operation per event on either side.
Sealing performs no HPKE and no signature; opening performs one HPKE unwrap per epoch, then none."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519

from herstelbus.core.privacy import _hazmat, open_event, seal_event

GM = "GM0363"


def test_no_public_key_op_per_event(world, monkeypatch) -> None:
    counts = {"hpke_wrap": 0, "hpke_unwrap": 0}
    for name in counts:
        real = getattr(_hazmat, name)

        def counted(*a, _real=real, _name=name, **k):
            counts[_name] += 1
            return _real(*a, **k)

        monkeypatch.setattr(_hazmat, name, counted)

    ring = world.keyring(GM)  # verifies the announcement: the one signature check per epoch
    sealed = []
    for i in range(50):
        rec, eid, subj = world.record(i)
        sealed.append((seal_event(rec, layout=world.layout, epoch=world.epochs[GM], event_id=eid, subject=subj), eid, subj, rec))
    assert counts == {"hpke_wrap": 0, "hpke_unwrap": 0}

    # Signing and verifying are methods of the Rust key types; wrap them to prove they are not called.
    calls = {"n": 0}

    class NoVerify:
        def __getattr__(self, name):
            calls["n"] += 1
            raise AssertionError("public-key operation on the per-event path")

    ring._trusted = {k: NoVerify() for k in ring._trusted}  # any use now fails the test
    for s, eid, subj, rec in sealed:
        assert open_event(s.record, layout=world.layout, keyring=ring, event_id=eid, subject=subj, key=s.wrapped_key) == rec
    assert counts["hpke_unwrap"] == 1 and calls["n"] == 0
    assert isinstance(world.signing_key.ed25519, ed25519.Ed25519PrivateKey)
