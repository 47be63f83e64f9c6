from pathlib import Path

from herstelbus.settings import Settings


def test_defaults_are_for_a_local_broker(monkeypatch) -> None:
    for key in ("HERSTELBUS_BOOTSTRAP_SERVERS", "HERSTELBUS_KAFKA_PORT", "HERSTELBUS_KAFKA_CONTROLLER_PORT",
                "HERSTELBUS_KAFKA_SASL_PORT", "HERSTELBUS_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.bootstrap == "127.0.0.1:9092"
    assert settings.controller_port == 9093
    assert settings.kafka_dir == Path(".herstelbus/kafka")


def test_environment_with_prefix_overrides(monkeypatch) -> None:
    monkeypatch.delenv("HERSTELBUS_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("HERSTELBUS_KAFKA_CONTROLLER_PORT", raising=False)
    monkeypatch.delenv("HERSTELBUS_KAFKA_SASL_PORT", raising=False)
    monkeypatch.setenv("HERSTELBUS_KAFKA_PORT", "19092")
    monkeypatch.setenv("HERSTELBUS_DATA_DIR", "/var/lib/herstelbus")
    settings = Settings()
    assert settings.bootstrap == "127.0.0.1:19092" and settings.controller_port == 19093
    assert settings.kafka_dir == Path("/var/lib/herstelbus/kafka")
    monkeypatch.setenv("HERSTELBUS_BOOTSTRAP_SERVERS", "kafka-0.prod:9093,kafka-1.prod:9093")
    assert Settings().bootstrap == "kafka-0.prod:9093,kafka-1.prod:9093"
