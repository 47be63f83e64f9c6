"""Crypto-shredding end to end (issue 4, property 5) on the real broker and the real key store.

Sealed overdrachten for three fictional persons are produced to a gemeente topic, their wrapped
data keys written to the key store; one person is erased with `herstelbus erase`; then the topic
is replayed from offset 0 and opened as a gemeente would (announcements and keys over HTTP, its
own private key): the erased person's records answer SubjectErased, the others open intact.
Afterwards no personal value of the input is found in any Kafka key, header or value, in the key
store's database file, or in the key store's log.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.contracts import (
    cloudevent_headers, decode, encode, get_catalogue, parse_json_event, source_urn,
)
from herstelbus.core.privacy import (
    GemeenteKey, KeyRowState, OpeningKeyring, PiiLayout, PseudonymSecret, SubjectErased, WrappedKey,
    generate_gemeente_key, generate_signing_key, key_ref, new_key_epoch, open_event, pseudonymise, seal_event,
)
from herstelbus.core.routing import decide, peildatum, routed_record
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from tests.integration.keystore_server import call, running_keystore

pytestmark = pytest.mark.kafka

GM = "GM0363"
SOURCE = source_urn("00000001003214345000", "herstelbus")  # a test OIN
PURPOSE = "https://gemeente.example/verwerkingen/herstel-kot"
TEMPLATE = Path(__file__).resolve().parents[1] / "unit" / "contracts" / "vectors" / "overdracht_volledig.json"
NAMES = [("Anna Fictief", "Proefvrouw"), ("Bram Verzonnen", "Testeling"), ("Cato Denkbeeldig", "Nepstra")]


def _test_bsns(count: int) -> list[str]:
    candidates = (str(n) for n in range(999_990_000, 999_999_999))
    return [b for b in candidates if is_valid_bsn(b)][:count]


def _overdrachten() -> list[dict]:
    template = json.loads(TEMPLATE.read_text())
    bsns = _test_bsns(2 * len(NAMES))
    events = []
    for i, (voornamen, achternaam) in enumerate(NAMES):
        obj = copy.deepcopy(template)
        obj["event_id"] = str(uuid.uuid4())
        obj["dossiernummer"] = f"UHT-2021-{900 + i:06d}"
        obj["persoon"].update(bsn=bsns[2 * i], voornamen=voornamen, achternaam=achternaam)
        obj["toeslagpartner"]["bsn"] = bsns[2 * i + 1]
        obj["adres"]["postcode"] = f"10{11 + i} AB"
        obj["telefoon"] = f"+3160000010{i}"
        obj["email"] = f"{voornamen.split()[0].lower()}.{achternaam.lower()}@example.org"
        events.append(parse_json_event(obj)[1])
    return events


def _personal_values(record: dict) -> list[str]:
    p, a = record["persoon"], record["adres"]
    return [p["bsn"], p["voornamen"], p["achternaam"], record["toeslagpartner"]["bsn"],
            a["postcode"], a["straat"], record["telefoon"], record["email"], record["dossiernummer"]]


def test_erased_subject_is_shredded_on_replay_and_others_still_open(kafka, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    # -- the exchange's material: pseudonym secret, signing key, the gemeente's PUBLIC key only
    secret = PseudonymSecret.generate()
    (tmp_path / "pseudonym.key").write_text(secret.export_base64())
    signing_key = generate_signing_key()
    gemeente_private = generate_gemeente_key()  # stays "at the gemeente": used only to open below
    db_url = f"sqlite:///{tmp_path / 'keystore.sqlite'}"
    store = KeyStore.open(db_url)
    public = GemeenteKey(GM, gemeente_private.public_key(), now - dt.timedelta(days=1))
    KeyAdmin(store).register_gemeente_key(public, "test")
    token = KeyAdmin(store).issue_token(GM, "test")
    epoch = new_key_epoch(public, signing_key, now)
    writer = ExchangeWriter(store)
    writer.put_announcement(epoch.announcement)

    # -- seal, produce, store keys (what the router will do)
    layout = PiiLayout(get_catalogue().current("overdracht").schema)
    topic = f"gemeente.{GM}.events.v1.e2e-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    originals = _overdrachten()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True)
    for record in originals:
        subject = pseudonymise(record["persoon"]["bsn"], secret)
        event_id = str(record["event_id"])
        (target,) = decide("overdracht", record, on=peildatum(record)).targets
        assert target.gemeentecode == GM
        sealed = seal_event(record, layout=layout, epoch=epoch, event_id=event_id, subject=subject)
        routed = routed_record(sealed.record, subject=subject, target=target, sleutel_id=epoch.kek_id,
                               bron_schema=layout.fingerprint_hex, gerouteerd_op=now)
        headers = cloudevent_headers("gerouteerde_overdracht", id=event_id, source=SOURCE, time=now,
                                     subject=subject, sequence=record["volgnummer"])
        writer.put_wrapped_keys([sealed.wrapped_key])  # durable before the record is sent
        producer.send(topic, key=subject.encode(), value=encode("gerouteerde_overdracht", routed),
                      headers=headers)
    producer.flush()
    producer.close()

    # -- erase the second person, by BSN, as ops would
    erased_record = originals[1]
    env = {"HERSTELBUS_KEYSTORE_URL": db_url, "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp_path / "pseudonym.key"),
           "HERSTELBUS_DATA_DIR": str(tmp_path / "data"), "HERSTELBUS_LOG_FORMAT": "json"}
    erase = subprocess.run([sys.executable, "-m", "herstelbus", "erase", "--bsn", erased_record["persoon"]["bsn"],
                            "--yes"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    assert erase.returncode == 0, erase.stderr
    assert f"forget notices pending for: {GM}" in erase.stdout

    # -- replay from offset 0 and open as the gemeente, over the key store's HTTP API
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    messages = list(consumer)
    consumer.close()
    assert len(messages) == len(originals)
    with running_keystore(env, tmp_path / "keystore.log") as base:
        status, _, epochs = call("GET", f"{base}/v1/gemeenten/{GM}/key-epochs", token)
        assert status == 200
        ring = OpeningKeyring(GM, [gemeente_private], [signing_key.public_key()])
        for item in epochs["epochs"]:
            ring.add(base64.b64decode(item["announcement"]))  # signature checked before any use
        routed = [decode(m.value)[1] for m in messages]
        refs = [key_ref(r, layout=layout, gemeentecode=GM, event_id=str(r["event_id"]), subject=r["subject"])
                for r in routed]
        status, _, answer = call("POST", f"{base}/v1/gemeenten/{GM}/keys", token, json={
            "purpose": PURPOSE,
            "refs": [{"subject": f.subject, "event_id": f.event_id, "key_id": f.key_id} for f in refs]})
        assert status == 200
    keys = [WrappedKey(GM, k["subject"], k["event_id"], k["key_id"], base64.b64decode(k["wrapped"]))
            if k["state"] == "released" else KeyRowState(k["state"]) for k in answer["keys"]]

    outcomes = {}
    for record, key in zip(routed, keys, strict=True):
        event_id = str(record["event_id"])
        try:
            outcomes[event_id] = open_event(record, layout=layout, keyring=ring, event_id=event_id,
                                            subject=record["subject"], key=key)
        except SubjectErased as erased:
            outcomes[event_id] = erased
    for original in originals:
        outcome = outcomes[str(original["event_id"])]
        if original is erased_record:
            assert isinstance(outcome, SubjectErased)
        else:
            assert {k: outcome[k] for k in original} == original  # every field back, exactly

    # -- no personal value of the input in Kafka keys, headers or values, the store, or its log
    values = [v for record in originals for v in _personal_values(record)]
    for message in messages:
        blobs = [message.key, message.value, *(v for _, v in message.headers)]
        for value in values:
            assert all(value.encode() not in blob for blob in blobs), "personal data on the gemeente topic"
    db_bytes = (tmp_path / "keystore.sqlite").read_bytes()
    log = (tmp_path / "keystore.log").read_text()
    for value in values:
        assert value.encode() not in db_bytes
        assert value not in log and value not in erase.stdout and value not in erase.stderr
    store.close()
