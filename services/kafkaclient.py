"""How this process's Kafka clients authenticate: as the principal whose credentials file
(``topics provision --principals`` writes one per party) ``HERSTELBUS_KAFKA_CLIENT_CONFIG`` names,
SASL_SSL with SCRAM-SHA-512 against the broker's CA; without one, not at all (the local plaintext
dev listener). ``HERSTELBUS_BOOTSTRAP_SERVERS`` then names the SASL_SSL listener.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from herstelbus import fetchguard
from herstelbus.errors import HerstelbusError
from herstelbus.settings import Settings, get_settings

# A credentials file holds kafka-python client options (plus the principal and the SASL bootstrap);
# only these keys are passed on to a client.
CLIENT_KEYS = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
               "sasl_plain_password", "ssl_cafile")


class ClientConfigError(HerstelbusError):
    pass


def client_options(path: Path) -> dict[str, Any]:
    """kafka-python options from a credentials file (``KafkaConsumer(**client_options(path))``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:  # never echo the content: it holds a password
        raise ClientConfigError(f"Kafka credentials file {path} unreadable ({type(exc).__name__})") from None
    return {k: data[k] for k in CLIENT_KEYS if data.get(k) is not None}


def security(settings: Settings | None = None) -> dict[str, Any]:
    """This process's kafka-python authentication options ({} without a credentials file); the
    bootstrap servers stay the caller's (HERSTELBUS_BOOTSTRAP_SERVERS)."""
    path = (settings or get_settings()).kafka_client_config
    if path is None:
        return {}
    options = client_options(path)
    options.pop("bootstrap_servers", None)
    return options


fetchguard.install_kafka_python()  # every kafka-python client here is made with this module's options
