"""The router's own ``HERSTELBUS_*`` settings: where the exchange's secrets are."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field

from herstelbus.core.privacy import PseudonymSecret
from herstelbus.core.privacy.keys import load_gemeente_public_key, load_signing_key
from herstelbus.errors import HerstelbusError
from herstelbus.keystore.settings import KeystoreSettings
from herstelbus.settings import MetricsSettings


class RouterConfigError(HerstelbusError):
    pass


class RouterSettings(KeystoreSettings, MetricsSettings):
    signing_key_file: Path | None = Field(
        default=None, description="The exchange's signing keys (PEM: Ed25519, then ML-DSA-65, which hybrid "
        "key epochs need; `herstelbus keys signing-keygen`)."
    )
    ops_public_key_file: Path | None = Field(
        default=None, description="Ops' public key (PEM, x25519 or hybrid mlkem768x25519): held and "
        "dead-lettered personal data is sealed to it."
    )
    oin: str = Field(default="00000001003214345000", description="OIN in ce_source (20 digits).")
    systeem: str = Field(default="herstelbus", description="System name in ce_source.")
    batch_size: int = Field(default=500, ge=1, le=10_000, description=(
        "At most this many records are routed together: one key-store transaction, their outputs "
        "sent concurrently, one wait for the brokers' acknowledgements."))
    batch_wait_ms: int = Field(default=5, ge=0, le=1_000, description=(
        "How long a batch waits to fill before it is routed anyway (added latency when idle)."))
    volgorde_wacht_s: float = Field(default=5.0, ge=0, le=300, description=(
        "A pauzeknop or erkenning waits for older records on the other input partitions (UHT's "
        "order across its topics); at most this long for a partition that delivers nothing. "
        "0 turns the ordering off."))
    volgorde_max_wachtend: int = Field(default=20_000, ge=1, description=(
        "More records waiting than this are routed without waiting (logged): a cap on memory "
        "when one partition lags far behind the others."))


def _read(path: Path | None, what: str, variable: str) -> bytes:
    if path is None:
        raise RouterConfigError(f"{what} not configured: set {variable} (herstelbus dev up makes one)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RouterConfigError(f"{what} unreadable at {path}: {exc.strerror}") from None


class ExchangeMaterial:
    """The secrets the router holds, loaded once; fails closed when any is missing."""

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings

    @cached_property
    def pseudonym_secret(self) -> PseudonymSecret:
        _read(self.settings.pseudonym_key_file, "pseudonym secret", "HERSTELBUS_PSEUDONYM_KEY_FILE")
        return PseudonymSecret.from_file(self.settings.pseudonym_key_file)

    @cached_property
    def signing_key(self):
        return load_signing_key(_read(self.settings.signing_key_file, "signing key", "HERSTELBUS_SIGNING_KEY_FILE"))

    @cached_property
    def ops_public_key(self):
        return load_gemeente_public_key(
            _read(self.settings.ops_public_key_file, "ops public key", "HERSTELBUS_OPS_PUBLIC_KEY_FILE"))
