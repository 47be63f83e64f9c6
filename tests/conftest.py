"""Shared fixtures. The real broker is started lazily: only tests that ask for ``kafka`` get one.

If a broker already answers (``HERSTELBUS_BOOTSTRAP_SERVERS``, or the local default port), tests
use it; otherwise the session starts a fresh one from the project's pinned jars on free ports
and stops it at the end. Topic names are fixed (the product's own), so a broker holds the records of
every test that ran on it: tests match records by event id or position, never by "all of them".
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from herstelbus.devkafka import LocalBroker
from herstelbus.devkafka.probe import cluster_info
from herstelbus.settings import Settings, get_settings



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class KafkaUnderTest:
    bootstrap: str
    started_by_tests: bool
    env: dict[str, str]  # what a herstelbus subprocess needs to reach this broker
    # The SASL_SSL listener (SCRAM-SHA-512) and the CA clients trust there: known for a broker this
    # session started, or one `herstelbus kafka up` started for these settings; else None.
    sasl_bootstrap: str | None = None
    ca_file: Path | None = None
    # The broker's log.dirs and its own logs, for tests that inspect what the broker stored.
    data_dir: Path | None = None
    logs_dir: Path | None = None


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaUnderTest]:
    base = get_settings()
    cache_dir = base.cache_dir.resolve()
    run_dir = tmp_path_factory.mktemp("herstelbus-run")
    broker: LocalBroker | None = None
    known: LocalBroker | None = None  # the broker whose files we know (ours, or `kafka up`'s)
    sasl_bootstrap: str | None = None
    ca_file: Path | None = None
    if base.bootstrap_servers:
        if cluster_info(base.bootstrap) is None:
            pytest.fail(f"HERSTELBUS_BOOTSTRAP_SERVERS={base.bootstrap} does not answer")
        bootstrap = base.bootstrap
    elif cluster_info(base.bootstrap, timeout_s=2.0) is not None:
        bootstrap = base.bootstrap
        local = LocalBroker(base)
        info = local.status()
        if info is not None and info.pid is not None:  # `herstelbus kafka up` started it (its pid file)
            known, sasl_bootstrap, ca_file = local, info.sasl_bootstrap, info.ca_file
    else:
        # Per session (pytest keeps the last three, logs included): sessions may run side by side.
        data_dir = tmp_path_factory.mktemp("broker")
        settings = Settings(data_dir=data_dir, cache_dir=cache_dir, kafka_port=free_port(),
                            kafka_controller_port=free_port(), kafka_sasl_port=free_port())
        broker = known = LocalBroker(settings)
        started = broker.up()
        bootstrap, sasl_bootstrap, ca_file = started.bootstrap, started.sasl_bootstrap, started.ca_file
    env = {
        "HERSTELBUS_BOOTSTRAP_SERVERS": bootstrap,
        "HERSTELBUS_DATA_DIR": str(run_dir),
        "HERSTELBUS_CACHE_DIR": str(cache_dir),
        "HERSTELBUS_LOG_FORMAT": "json",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield KafkaUnderTest(bootstrap, broker is not None, env, sasl_bootstrap=sasl_bootstrap, ca_file=ca_file,
                             data_dir=known.data if known else None, logs_dir=known.logs if known else None)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        if broker is not None:
            broker.down()
