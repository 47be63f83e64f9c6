"""The local-broker machinery that runs without a broker: config rendering and clear failures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from herstelbus.devkafka.broker import _require_free_port
from herstelbus.devkafka.config import broker_overrides, deploy_dir, pinned_kafka_version, render_properties
from herstelbus.devkafka.errors import DevKafkaError
from herstelbus.devkafka.toolchain import ensure_jars, java_executable
from herstelbus.settings import Settings


def test_pinned_version_is_kafka_4() -> None:
    version = pinned_kafka_version(deploy_dir(Settings()) / "pom.xml")
    assert version.split(".")[0] == "4"


def test_rendering_overrides_only_the_rendered_keys(tmp_path: Path) -> None:
    template = (deploy_dir(Settings()) / "server.properties").read_text()
    settings = Settings(kafka_port=19092, kafka_controller_port=19099)
    rendered = render_properties(template, broker_overrides(settings, tmp_path))
    props = dict(line.split("=", 1) for line in rendered.splitlines() if "=" in line and not line.startswith("#"))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19099"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19099"
    assert props["log.dirs"] == str(tmp_path)
    assert props["auto.create.topics.enable"] == "false"
    assert props["process.roles"] == "broker,controller"
    assert all("0.0.0.0" not in v for v in props.values())  # loopback only


def test_port_taken_is_one_clear_line() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        with pytest.raises(DevKafkaError) as err:
            _require_free_port(port)
    assert f"port {port}" in str(err.value) and "already in use" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_java_names_the_package(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DevKafkaError, match="apt-get install openjdk-17-jre-headless"):
        java_executable()


def test_missing_maven_names_the_package(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DevKafkaError, match="apt-get install maven"):
        ensure_jars(deploy_dir(Settings()) / "pom.xml", tmp_path, "4.3.1")
