"""The acks worker's own ``HERSTELBUS_*`` settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from herstelbus.settings import MetricsSettings, Settings, get_settings

SQLITE_FILE = "acks.sqlite"


class AcksSettings(MetricsSettings):
    model_config = SettingsConfigDict(env_prefix="HERSTELBUS_", frozen=True, extra="ignore")

    acks_url: SecretStr = Field(
        default=SecretStr(""), description="SQLAlchemy URL of the acks state; empty: SQLite in the data dir.")
    acks_termijnen: str = Field(default="", description=(
        "Deadlines over the defaults, e.g. OVERDRACHT=ONTVANGEN/2wd,ERKENNING=VERWERKT/10wd (units s, m, h, wd)."))
    acks_overdue_interval_s: float = Field(default=60.0, gt=0, description="How often overdue deadlines are checked.")
    acks_grace_s: float = Field(default=10.0, ge=0, description=(
        "An ack for an event not known yet waits until the status topic was read past the ack's "
        "publication; at most this long for a status partition that delivers nothing. Then refused."))
    oin: str = Field(default="00000001003214345000", description="OIN in ce_source (20 digits).")
    systeem: str = Field(default="herstelbus", description="System name in ce_source.")
    ops_public_key_file: Path | None = Field(
        default=None, description="Ops' public key (PEM, x25519 or hybrid mlkem768x25519): dead-lettered acks are sealed to it.")

    @field_validator("ops_public_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def database_url(self, base: Settings | None = None) -> str:
        url = self.acks_url.get_secret_value()
        return url or f"sqlite:///{((base or get_settings()).data_dir / SQLITE_FILE).resolve()}"
