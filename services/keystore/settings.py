"""The key store's own settings (``HERSTELBUS_*``), beside the shared :mod:`herstelbus.settings`.

``HERSTELBUS_KEYSTORE_URL``: a SQLAlchemy URL. Empty (the default) means the SQLite file
``$HERSTELBUS_DATA_DIR/keystore.sqlite``; production uses PostgreSQL,
``postgresql+psycopg://user:password@host:5432/keystore`` (install ``herstelbus[postgres]``).

``HERSTELBUS_PSEUDONYM_KEY_FILE``: the exchange's pseudonym secret (base64 text, see
:class:`herstelbus.core.privacy.PseudonymSecret`), needed by ``herstelbus erase --bsn``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from herstelbus.settings import Settings, get_settings

SQLITE_FILE = "keystore.sqlite"


class KeystoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERSTELBUS_", frozen=True, extra="ignore")

    keystore_url: SecretStr = Field(
        default=SecretStr(""), description="SQLAlchemy URL; empty: SQLite in the data dir. May hold a password."
    )
    pseudonym_key_file: Path | None = Field(
        default=None, description="File with the pseudonym secret (base64), for erase --bsn."
    )

    @field_validator("pseudonym_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def database_url(self, base: Settings | None = None) -> str:
        url = self.keystore_url.get_secret_value()
        if url:
            return url
        return f"sqlite:///{((base or get_settings()).data_dir / SQLITE_FILE).resolve()}"
