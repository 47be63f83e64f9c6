"""A small world for the key-store tests: the exchange's signing key, two gemeenten with key pairs
and key epochs, fictional persons, and readers that dump every stored byte for leak checks.

Every BSN here passes the 11-proef and lies in the 9999xxxxx test range; the name is invented.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text

from herstelbus.core.privacy import (
    GemeenteKey,
    PseudonymSecret,
    SealingEpoch,
    WrappedKey,
    generate_gemeente_key,
    generate_signing_key,
    new_key_epoch,
    pseudonymise,
)

BSN = "999990019"
OTHER_BSN = "999900018"
NAME = "Jantine Fictief Testpersoon"
PERSONAL_VALUES = (BSN, OTHER_BSN, NAME, "Testpersoon")
GM_A, GM_B = "GM0363", "GM0599"  # Amsterdam, Rotterdam
NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone.utc)


@dataclass
class World:
    secret: PseudonymSecret = field(default_factory=PseudonymSecret.generate)
    signing_key: object = field(default_factory=generate_signing_key)
    private_keys: dict = field(default_factory=dict)  # gemeentecode -> X25519PrivateKey (gemeente only)
    directory: dict = field(default_factory=dict)  # gemeentecode -> GemeenteKey (public, exchange)
    epochs: dict = field(default_factory=dict)  # gemeentecode -> SealingEpoch

    def __post_init__(self) -> None:
        for gm in (GM_A, GM_B):
            priv = generate_gemeente_key()
            self.private_keys[gm] = priv
            self.directory[gm] = GemeenteKey(gm, priv.public_key(), NOW - dt.timedelta(days=30))
            self.epochs[gm] = new_key_epoch(self.directory[gm], self.signing_key, NOW)

    def subject(self, bsn: str = BSN) -> str:
        return pseudonymise(bsn, self.secret)

    def epoch(self, gm: str) -> SealingEpoch:
        return self.epochs[gm]

    def row(self, gm: str, subject: str, event_id: str | None = None) -> WrappedKey:
        """A key-store row as the router writes it (the wrapped bytes are opaque to the store)."""
        return WrappedKey(gm, subject, event_id or str(uuid.uuid4()), self.epochs[gm].kek_id, os.urandom(61))


def dump_database(url: str) -> tuple[str, bytes]:
    """Every value of every key-store table, as text and as raw bytes (for leak checks)."""
    engine = create_engine(url)
    texts, blobs = [], []
    try:
        with engine.connect() as conn:
            for name in inspect(conn).get_table_names():
                for row in conn.execute(select(text("*")).select_from(text(name))):
                    for value in row:
                        (blobs if isinstance(value, (bytes, memoryview)) else texts).append(value)
    finally:
        engine.dispose()
    return "\n".join(map(str, texts)), b"".join(bytes(b) for b in blobs)


def assert_no_personal_data(url: str, *outputs: str) -> None:
    as_text, as_bytes = dump_database(url)
    for value in PERSONAL_VALUES:
        assert value not in as_text
        assert value.encode() not in as_bytes
        for out in outputs:
            assert value not in out
    if url.startswith("sqlite:///"):  # the file itself, with its journal, byte for byte
        db = Path(url.removeprefix("sqlite:///"))
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists():
                raw = path.read_bytes()
                assert all(v.encode() not in raw for v in PERSONAL_VALUES)
