"""A small world for the privacy tests: an exchange, two gemeenten, fictional parents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from herstelbus.core.privacy import (
    HYBRID_SUITE,
    X25519_SUITE,
    CipherSuite,
    GemeenteKey,
    OpeningKeyring,
    PiiLayout,
    PseudonymSecret,
    generate_gemeente_key,
    generate_signing_key,
    new_key_epoch,
    pseudonymise,
)
from privacy_fixtures import NOW, OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA, overdracht_record


@dataclass
class World:
    layout: PiiLayout
    secret: PseudonymSecret
    signing_key: object
    gemeente_keys: dict  # gemeentecode -> private key of the suite (what only the gemeente holds)
    directory: list  # GemeenteKey rows (what the exchange holds: public keys only)
    epochs: dict  # gemeentecode -> SealingEpoch
    suite: CipherSuite = HYBRID_SUITE

    def keyring(self, gm: str) -> OpeningKeyring:
        ring = OpeningKeyring(gm, [self.gemeente_keys[gm]], [self.signing_key.public_key()])
        ring.add(self.epochs[gm].announcement.to_bytes())
        return ring

    def record(self, i: int = 0) -> tuple[dict, str, str]:
        rec = overdracht_record(i)
        return rec, rec["event_id"], pseudonymise(rec["persoon"]["bsn"], self.secret)


@pytest.fixture(params=[HYBRID_SUITE, X25519_SUITE], ids=lambda s: s.name)
def suite(request) -> CipherSuite:
    """Every privacy test that uses the world runs in both suites: the hybrid default and the
    classical one (records made before issue 12 must keep opening)."""
    return request.param


@pytest.fixture
def world(suite: CipherSuite) -> World:
    signing = generate_signing_key()
    keys, directory, epochs = {}, [], {}
    for gm in ("GM0363", "GM0599"):
        priv = generate_gemeente_key(suite)
        keys[gm] = priv
        reg = GemeenteKey(gm, priv.public_key(), NOW - dt.timedelta(days=30))
        directory.append(reg)
        epochs[gm] = new_key_epoch(reg, signing, NOW)
    return World(
        layout=PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS),
        secret=PseudonymSecret.generate(),
        signing_key=signing,
        gemeente_keys=keys,
        directory=directory,
        epochs=epochs,
        suite=suite,
    )
