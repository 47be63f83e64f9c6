"""`herstelbus dashboard` end to end in headless Chromium (issue 7): a real subprocess on a free
port, a real acks state written through AcksStore, real records on the broker's ops topics.

The page must show this test's numbers, a click on a gemeente must filter the page to it, and no
personal data may appear. The acks state is the test's own (its data dir); the topics are shared
with other tests, so the test checks its own gemeenten and reason codes exactly and compares the
rest (the chart of all gemeenten) with ``/api/overzicht``.

Chromium: Debian's ``chromium`` and ``chromium-driver`` (``make system-deps`` installs them).
Missing, the test fails in CI and as root (who can run ``make system-deps``), and skips with a
message otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaProducer

from herstelbus.acks.settings import AcksSettings
from herstelbus.acks.state import AcksStore
from herstelbus.connectors.uht.synthetic import generate
from herstelbus.core import contracts
from herstelbus.core.acks import GEWEIGERD, ONTVANGEN, VERWERKT, audit_record, doelen_uit
from herstelbus.core.privacy import generate_gemeente_key
from herstelbus.core.privacy.ops import frame_record, seal_for_ops
from herstelbus.core.routing.deadletter import deadletter_record, unroutable_record
from herstelbus.core.routing.refs import KafkaRef
from herstelbus.core.topology import AUDIT, DEADLETTER, STATUS, UNROUTABLE, gemeente_events_topic, topic_specs
from herstelbus.processes import stop
from herstelbus.settings import Settings, get_settings
from herstelbus.topics import provision
from tests.conftest import free_port

pytestmark = pytest.mark.kafka

RUN = uuid.uuid4().hex[:8].upper()
# Per gemeente (few other tests use these) the states of its routed events; "OVERDUE" is an open
# event whose deadline was notified.
STATES = {
    "GM0080": [ONTVANGEN, ONTVANGEN, VERWERKT, "ROUTED", "OVERDUE"],
    "GM0193": [GEWEIGERD, VERWERKT, VERWERKT],
    "GM0268": ["ROUTED", "ROUTED"],
}
EXPECTED = {  # routed, ontvangen, verwerkt, geweigerd, overdue
    "GM0080": (5, 2, 1, 0, 1), "GM0193": (3, 0, 2, 1, 0), "GM0268": (2, 0, 0, 0, 0),
}
DL_REDEN, UR_REDEN = f"DASHBOARD_TEST_{RUN}", f"DASHBOARD_VOW_{RUN}"
_offset = iter(range(10**15 + uuid.uuid4().int % 10**12, 10**16))  # positions no real ingest record has


def _bron() -> KafkaRef:
    return KafkaRef("uht.overdracht.v1", 0, next(_offset))


def _routed(gm: str, now: datetime) -> dict:
    return {"status_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "event_type": "OVERDRACHT",
            "status": "ROUTED", "reden": None, "gemeentecode": None, "ack_id": None, "geminimaliseerd": False,
            "urgent": False, "overgeslagen": [], "at": now, "bron": _bron().as_record(), "doel": None,
            "doelen": [{"gemeentecode": gm, "reden": "WOONGEMEENTE", "oorspronkelijke_gemeentecode": None,
                        "opvolger_gemeentecode": None, "topic": gemeente_events_topic(gm), "partition": 0,
                        "offset": next(_offset)}]}


def _write_acks_state(store: AcksStore, now: datetime) -> list[dict]:
    """Through the store's own API, as the acks worker does: ROUTED rows, then their new states."""
    receipts = []
    for gm, states in STATES.items():
        for state in states:
            receipt = _routed(gm, now)
            receipts.append(receipt)
            [doel] = doelen_uit(receipt)
            assert store.put_routed([doel]) == 1
            if state == "OVERDUE":
                store.save(replace(doel, gemeld=frozenset({ONTVANGEN})))
            elif state != "ROUTED":
                store.save(replace(doel, state=state, ack_ids=frozenset({str(uuid.uuid4())}), changed_at=now))
    return receipts


def _sealed_overdracht() -> tuple[bytes, list[str]]:
    """A real synthetic overdracht as UHT would send it, framed like an input record; and the
    personal data in it that must never show."""
    event = next(e for e in generate(10, seed=5) if e["type"] == "overdracht" and e["toeslagpartner"])
    record_type, record = contracts.parse_json_event(event)
    framed = frame_record(event["dossiernummer"].encode(), contracts.encode(record_type, record), [])
    p, tp = event["persoon"], event["toeslagpartner"]
    return framed, [p["bsn"], p["achternaam"], p["voornamen"], tp["bsn"], tp["achternaam"], event["dossiernummer"],
                    event["telefoon"], event["email"], event["adres"]["postcode"]]


def _ops_records(ops_key, now: datetime) -> tuple[list[tuple[str, str, dict]], list[str], str]:
    framed, personal = _sealed_overdracht()
    out = []
    for _ in range(2):
        dl = deadletter_record([(DL_REDEN, "persoon.bsn")], bron=_bron(), origineel=b"", sleutel_id="x", at=now)
        dl["origineel"], dl["sleutel_id"] = seal_for_ops(framed, ops_key, dl["deadletter_id"])
        out.append((DEADLETTER, "deadletter", dl))
    ur = unroutable_record("overdracht", uuid.uuid4(), UR_REDEN, bron=_bron(), origineel=b"", sleutel_id="x", at=now)
    ur["origineel"], ur["sleutel_id"] = seal_for_ops(framed, ops_key, ur["deadletter_id"])
    out.append((UNROUTABLE, "deadletter", ur))
    audit_event = str(uuid.uuid4())
    out.append((AUDIT, "audit", audit_record({"event_id": audit_event}, "NIET_GEROUTEERD_AAN_GEMEENTE",
                                             topic_gemeente="GM0193", topic="gemeente.GM0193.acks.v1",
                                             bron=_bron(), at=now)))
    return out, personal, audit_event


def _send(bootstrap: str, items: list[tuple[str, str, dict]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for topic, record_type, record in items:
        producer.send(topic, value=contracts.encode(record_type, record))
    producer.flush()
    producer.close()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait_until_read(base: str, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if _get(f"{base}/healthz")["kafka"]["bijgewerkt"]:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.3)
    raise AssertionError("dashboard not caught up after 90 s\n" + log.read_text()[-3000:])


def _chromium():
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (browser and driver):
        why = "chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver; make system-deps)"
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)  # a Service path: no driver download


def _rows(browser) -> dict[str, tuple[int, ...]]:
    from selenium.webdriver.common.by import By

    out = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, "#gemeenten tr.gemeente"):
        cells = [tr.find_element(By.CSS_SELECTOR, f"td.{k}").text for k in
                 ("routed", "ontvangen", "verwerkt", "geweigerd", "overdue")]
        out[tr.get_attribute("data-gemeente")] = tuple(int(c) for c in cells)
    return out


def _bars(browser, dag: str) -> dict[str, int]:
    from selenium.webdriver.common.by import By

    return {rect.get_attribute("data-uitkomst"): int(rect.get_attribute("data-aantal"))
            for rect in browser.find_elements(By.CSS_SELECTOR, f'g.dag[data-dag="{dag}"] rect.staaf')}


def _reasons(browser, table: str) -> dict[str, int]:
    from selenium.webdriver.common.by import By

    return {tr.get_attribute("data-reden"): int(tr.find_element(By.CSS_SELECTOR, "td.aantal").text)
            for tr in browser.find_elements(By.CSS_SELECTOR, f"#{table} tr.reden")}


def test_dashboard_in_headless_chromium(kafka, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    provision(kafka.bootstrap, [s for s in topic_specs([], get_settings().topic_policy())
                                if s.name in (STATUS, DEADLETTER, UNROUTABLE, AUDIT)], 1)
    now = datetime.now(timezone.utc)
    dag = now.astimezone(ZoneInfo("Europe/Amsterdam")).date().isoformat()  # the chart's days are Dutch
    data = tmp_path / "data"
    store = AcksStore.open(AcksSettings().database_url(Settings(data_dir=data)))  # where the dashboard looks
    receipts = _write_acks_state(store, now)
    store.engine.dispose()
    ops, personal, audit_event = _ops_records(generate_gemeente_key().public_key(), now)
    _send(kafka.bootstrap, [(STATUS, "statusbericht", r) for r in receipts] + ops)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dashboard.log"
    env = {**os.environ, **kafka.env, "HERSTELBUS_DATA_DIR": str(data)}
    env.pop("HERSTELBUS_ACKS_URL", None)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "dashboard", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    browser = None
    try:
        _wait_until_read(base, proc, log)
        api = _get(f"{base}/api/overzicht")
        assert {r["gemeentecode"]: tuple(r[k] for k in ("routed", "ontvangen", "verwerkt", "geweigerd", "overdue"))
                for r in api["gemeenten"]} == EXPECTED
        with pytest.raises(urllib.error.HTTPError) as bad:
            _get(f"{base}/api/overzicht?gemeente=<script>")
        assert bad.value.code == 400

        browser = _chromium()
        browser.get(base + "/")
        assert browser.title == "herstelbus"
        assert _rows(browser) == EXPECTED
        oudste = {tr.get_attribute("data-gemeente"): tr.find_element(By.CSS_SELECTOR, "td.oudste").text
                  for tr in browser.find_elements(By.CSS_SELECTOR, "#gemeenten tr.gemeente")}
        assert oudste["GM0193"] == "-" and re.fullmatch(r"\d+m", oudste["GM0080"])
        assert _reasons(browser, "deadletter")[DL_REDEN] == 2
        assert _reasons(browser, "unroutable")[UR_REDEN] == 1
        # The chart of all gemeenten: shared topics, so today's bar as the JSON endpoint counts it
        # (asked right after the page), which holds at least this test's ROUTED receipts.
        [today] = [d for d in _get(f"{base}/api/overzicht")["grafiek"]["dagen"] if d["dag"] == dag]
        assert _bars(browser, dag) == {u: n for u, n in today["aantallen"].items() if n}
        assert today["aantallen"]["ROUTED"] >= len(receipts)
        assert audit_event in browser.page_source

        browser.find_element(By.LINK_TEXT, "GM0193").click()
        WebDriverWait(browser, 10).until(expected_conditions.url_contains("gemeente=GM0193"))
        assert browser.find_element(By.ID, "filter").text == "GM0193"
        assert _rows(browser) == {"GM0193": EXPECTED["GM0193"]}  # the other gemeenten are gone
        assert "GM0080" not in browser.page_source and "GM0268" not in browser.page_source
        assert _bars(browser, dag) == {"ROUTED": 3}  # its own chart: routed to GM0193 today
        assert audit_event in browser.page_source

        pages = [browser.page_source, json.dumps(api)]
        browser.find_element(By.ID, "alle").click()
        WebDriverWait(browser, 10).until(lambda b: "gemeente=" not in b.current_url)
        assert set(_rows(browser)) == set(EXPECTED)
        pages.append(browser.page_source)
        for page in pages:
            for value in personal:
                assert value not in page, "personal data on the dashboard"
    finally:
        if browser is not None:
            browser.quit()
        assert stop(proc, timeout_s=15) in (0, -15), log.read_text()[-3000:]
