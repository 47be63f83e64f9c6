"""`herstelbus gemeente ack` on the real broker: the ack is on gemeente.<GM>.acks.v1, decodable, with the
printed ack_id as record id and CloudEvent id, keyed by event_id; a rule break is one line, exit 1."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid

import pytest

from herstelbus.core import contracts
from herstelbus.core.topology import gemeente_acks_topic
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import read_until

pytestmark = pytest.mark.kafka

GM = "GM0599"


@pytest.fixture(scope="module")
def topic(kafka) -> str:
    name = gemeente_acks_topic(GM)
    specs = [s for s in wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)) if s.name == name]
    provision(kafka.bootstrap, specs, 1)
    return name


def _ack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "herstelbus", "gemeente", "ack", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _read_back(kafka, topic: str, ack_id: str):
    mine = lambda m: dict(m.headers).get("ce_id") == ack_id.encode()  # noqa: E731
    (message,) = [m for m in read_until(kafka.bootstrap, topic, lambda seen: any(map(mine, seen))) if mine(m)]
    return message, contracts.decode(message.value)


@pytest.mark.parametrize("args, reden, toelichting", [
    (["--status", "VERWERKT"], None, None),
    (["--status", "GEWEIGERD", "--reden", "NIET_ONZE_INWONER", "--toelichting", "verhuisd"], "NIET_ONZE_INWONER",
     "verhuisd"),
])
def test_the_ack_is_on_the_gemeente_acks_topic(kafka, topic, args, reden, toelichting) -> None:
    event_id = str(uuid.uuid4())
    done = _ack(event_id, "--gemeente", GM, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    ack_id = done.stdout.strip()
    message, (record_type, record) = _read_back(kafka, topic, ack_id)
    assert record_type == "ontvangstbevestiging" and message.key == event_id.encode()
    assert (str(record["ack_id"]), str(record["event_id"]), record["gemeentecode"]) == (ack_id, event_id, GM)
    assert (record["status"], record["reden"], record["toelichting"]) == (args[1], reden, toelichting)
    assert dict(message.headers)["ce_type"] == contracts.CE_TYPES["ontvangstbevestiging"].encode()


def test_geweigerd_without_reden_is_one_line_and_sends_nothing(kafka, topic) -> None:
    done = _ack(str(uuid.uuid4()), "--gemeente", GM, "--status", "GEWEIGERD")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "herstelbus: error: --reden is required with --status GEWEIGERD: one of NIET_ONZE_INWONER, ONLEESBAAR, "
        "ONVOLLEDIG, ANDERS"]
