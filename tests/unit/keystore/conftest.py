from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from herstelbus.keystore.store import ExchangeWriter, GemeenteAccess, KeyAdmin, KeyStore
from tests.unit.keystore.kit import World


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keystore.sqlite'}"


@pytest.fixture
def store(db_url: str) -> Iterator[KeyStore]:
    ks = KeyStore.open(db_url)
    yield ks
    ks.close()


@pytest.fixture
def writer(store: KeyStore) -> ExchangeWriter:
    return ExchangeWriter(store)


@pytest.fixture
def access(store: KeyStore) -> GemeenteAccess:
    return GemeenteAccess(store)


@pytest.fixture
def admin(store: KeyStore) -> KeyAdmin:
    return KeyAdmin(store)
