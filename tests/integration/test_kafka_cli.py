"""`herstelbus kafka up|status|down` as a user runs them, on a second broker of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.kafka


def herstelbus(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def own_broker_env(kafka, tmp_path: Path) -> dict[str, str]:
    # kafka: the session broker is already up, so this test also shows two brokers side by side.
    return {
        "HERSTELBUS_DATA_DIR": str(tmp_path / "hb"),
        "HERSTELBUS_CACHE_DIR": kafka.env["HERSTELBUS_CACHE_DIR"],
        "HERSTELBUS_KAFKA_PORT": str(free_port()),
        "HERSTELBUS_KAFKA_CONTROLLER_PORT": str(free_port()),
        "HERSTELBUS_KAFKA_SASL_PORT": str(free_port()),
        "HERSTELBUS_BOOTSTRAP_SERVERS": "",
    }


def test_up_status_down(own_broker_env: dict[str, str]) -> None:
    port = own_broker_env["HERSTELBUS_KAFKA_PORT"]
    try:
        up = herstelbus(own_broker_env, "kafka", "up")
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith(f"started: 127.0.0.1:{port}")

        again = herstelbus(own_broker_env, "kafka", "up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("already running")

        status = herstelbus(own_broker_env, "kafka", "status")
        assert status.returncode == 0, status.stderr
        assert "broker id 1" in status.stdout
        assert "version 4." in status.stdout
        assert f"listener PLAINTEXT://127.0.0.1:{port}" in status.stdout
        pid = int(status.stdout.split("(pid ")[1].split(")")[0])
    finally:
        down = herstelbus(own_broker_env, "kafka", "down")
    assert down.returncode == 0 and down.stdout.strip() == "stopped"
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]

    after = herstelbus(own_broker_env, "kafka", "status")
    assert after.returncode == 1
    assert herstelbus(own_broker_env, "kafka", "down").stdout.strip() == "no broker started by herstelbus is running"


def test_up_with_port_taken_fails_with_one_clear_line(own_broker_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(own_broker_env["HERSTELBUS_KAFKA_PORT"])))
        squatter.listen()
        result = herstelbus(own_broker_env, "kafka", "up", timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "already in use" in lines[0] and own_broker_env["HERSTELBUS_KAFKA_PORT"] in lines[0]
    assert "Traceback" not in result.stderr


def test_broker_dying_at_start_up_shows_why(own_broker_env: dict[str, str], tmp_path: Path) -> None:
    # A reporter class that does not exist passes config validation and kills the broker at start.
    deploy = tmp_path / "deploy"
    shutil.copytree(Path(__file__).resolve().parents[2] / "deploy" / "local", deploy)
    with open(deploy / "server.properties", "a") as props:
        props.write("\nmetric.reporters=nl.herstelbus.GeenReporter\n")
    result = herstelbus({**own_broker_env, "HERSTELBUS_DEPLOY_DIR": str(deploy)}, "kafka", "up")
    assert result.returncode != 0
    assert "exited during start-up" in result.stderr
    assert "GeenReporter" in result.stderr  # the cause, from the broker's own log
    assert "Traceback" not in result.stderr
    assert herstelbus(own_broker_env, "kafka", "status").returncode == 1  # nothing left behind
