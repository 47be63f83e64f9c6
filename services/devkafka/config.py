"""Where the local-Kafka files are, which Kafka version is pinned, and the rendered server.properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import herstelbus
from herstelbus.devkafka.errors import DevKafkaError
from herstelbus.devkafka.tls import BrokerTls
from herstelbus.settings import Settings

_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def deploy_dir(settings: Settings) -> Path:
    folder = settings.deploy_dir or Path(herstelbus.__file__).resolve().parent.parent / "deploy" / "local"
    if not (folder / "pom.xml").is_file():
        raise DevKafkaError(
            f"no pom.xml in {folder}: run herstelbus from its repository or set HERSTELBUS_DEPLOY_DIR"
        )
    return folder.resolve()


def pinned_kafka_version(pom: Path) -> str:
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise DevKafkaError(f"{pom} does not pin <kafka.version>")
    return node.text.strip()


def render_properties(template: str, overrides: dict[str, str]) -> str:
    """Replace the values of ``overrides``' keys in a .properties text; keys not in it are appended.

    Comments and every other line stay as written, so the checked-in file remains the reference.
    """
    pending = dict(overrides)
    lines = []
    for line in template.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in pending:
            lines.append(f"{key}={pending.pop(key)}")
        else:
            lines.append(line)
    lines.extend(f"{k}={v}" for k, v in pending.items())
    return "\n".join(lines) + "\n"


def broker_overrides(settings: Settings, data_dir: Path, tls: BrokerTls | None = None) -> dict[str, str]:
    """The rendered keys. With ``tls``, a SASL_SSL listener (SCRAM-SHA-512) on ``settings.sasl_port``
    next to the plaintext one; without, the plaintext listener only."""
    port, cport = settings.kafka_port, settings.controller_port
    overrides = {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "log.dirs": str(data_dir),
    }
    if tls is not None:
        sasl = f"SASL_SSL://127.0.0.1:{settings.sasl_port}"
        overrides["listeners"] += f",{sasl}"
        overrides["advertised.listeners"] += f",{sasl}"
        overrides["ssl.keystore.location"] = str(tls.keystore)
        overrides["ssl.keystore.password"] = tls.keystore_password
        overrides["ssl.key.password"] = tls.keystore_password
    return overrides
