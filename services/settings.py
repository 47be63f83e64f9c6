"""One settings object for every herstelbus process, read from ``HERSTELBUS_*`` environment variables.

The defaults are for local use: a single broker on 127.0.0.1 started by ``herstelbus kafka up``.
Point herstelbus at an existing cluster with ``HERSTELBUS_BOOTSTRAP_SERVERS`` (see deploy/README.md).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from herstelbus.core.topology import DAY_MS, HOUR_MS, TopicPolicy


class MetricsSettings(BaseSettings):
    """A worker's metrics endpoint (herstelbus.metrics): part of each worker's own settings."""

    model_config = SettingsConfigDict(env_prefix="HERSTELBUS_", frozen=True, extra="ignore")

    metrics_port: int = Field(default=0, ge=0, le=65535, description=(
        "Port of this worker's /metrics and /healthz (herstelbus.metrics); 0: not served. Off by "
        "default: workers on one machine must each be given their own port."))
    metrics_host: str = Field(default="127.0.0.1", description=(
        "Address the metrics port listens on; 0.0.0.0 to be scraped from another host (a pod)."))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERSTELBUS_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field(
        default="", description="Kafka bootstrap servers; empty means the local broker on kafka_port."
    )
    data_dir: Path = Field(
        default=Path(".herstelbus"), description="Where local state lives (broker data, key store)."
    )
    cache_dir: Path = Field(
        default=Path(".herstelbus/cache"), description="Where the pinned Kafka jars are fetched to."
    )
    kafka_port: int = Field(default=9092, ge=1, le=65535, description="Port of the local broker.")
    kafka_controller_port: int = Field(
        default=0, ge=0, le=65535, description="KRaft controller port; 0 means kafka_port + 1."
    )
    kafka_sasl_port: int = Field(default=0, ge=0, le=65535, description=(
        "Port of the local broker's SASL_SSL listener (SCRAM-SHA-512 over TLS); 0 means kafka_port + 2."))
    kafka_sasl_bootstrap: str = Field(default="", description=(
        "SASL_SSL bootstrap servers written into the credential files; empty: the local broker's SASL listener."))
    kafka_ssl_cafile: Path | None = Field(default=None, description=(
        "CA certificate (PEM) clients trust on the SASL_SSL listener; default: the local broker's dev CA."))
    kafka_client_config: Path | None = Field(default=None, description=(
        "A credentials file (JSON, as `topics provision --principals` writes) the provisioning admin "
        "connects with, e.g. the super user over SASL_SSL; default: no authentication (local plaintext)."))
    kafka_heap: str = Field(default="512m", description="Java heap for the local broker.")
    kafka_start_timeout: float = Field(
        default=90.0, gt=0, description="Seconds to wait for the local broker to answer metadata."
    )
    deploy_dir: Path | None = Field(
        default=None, description="Folder with pom.xml/server.properties; default: the repo's deploy/local."
    )
    replication_factor: int = Field(default=1, ge=1, description="Topic replicas; 3 in production.")
    min_insync_replicas: int = Field(default=1, ge=1, description="2 in production (with 3 replicas).")
    ingest_partitions: int = Field(default=3, ge=1, description="Partitions of UHT's ingest and status topics.")
    gemeente_partitions: int = Field(default=1, ge=1, description="Partitions per gemeente topic.")
    ingest_retention_hours: int = Field(
        default=24, ge=1, le=168, description="Ingest topics hold plaintext: kept this long only."
    )
    gemeente_retention_days: int = Field(default=5 * 365, ge=1, description="Replay window of gemeente topics.")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON lines otherwise."
    )
    log_level: str = Field(default="INFO")
    stall_after_s: float = Field(default=60.0, gt=0, description=(
        "A worker whose agent sat idle this long while records waited on a partition it owns exits"
        " (code 70) for its supervisor to restart it: a consumer that stopped fetching is never silent."))

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def controller_port(self) -> int:
        return self.kafka_controller_port or self.kafka_port + 1

    @property
    def sasl_port(self) -> int:
        return self.kafka_sasl_port or self.kafka_port + 2

    @property
    def credentials_dir(self) -> Path:
        """Where provisioning writes each principal's credentials (0600 files, never committed)."""
        return self.data_dir / "credentials"

    @property
    def sasl_bootstrap(self) -> str:
        return self.kafka_sasl_bootstrap or f"127.0.0.1:{self.sasl_port}"

    @property
    def ssl_cafile(self) -> Path:
        return self.kafka_ssl_cafile or self.kafka_dir / "tls" / "ca.pem"

    def topic_policy(self) -> TopicPolicy:
        return TopicPolicy(
            replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas,
            ingest_partitions=self.ingest_partitions,
            gemeente_partitions=self.gemeente_partitions,
            ingest_retention_ms=self.ingest_retention_hours * HOUR_MS,
            gemeente_retention_ms=self.gemeente_retention_days * DAY_MS,
        )

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_servers or f"127.0.0.1:{self.kafka_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
