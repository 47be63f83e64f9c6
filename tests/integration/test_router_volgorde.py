"""UHT's order across its three topics, on the real broker: a router restarted onto a backlog gets
a pauzeknop long before the overdracht UHT published just before it (that one sits behind hundreds
of others on its topic). The pause must still reach the gemeente the overdracht made eerder
betrokken: it waits for the older records (services/core/routing/volgorde.py).

Without the ordering (HERSTELBUS_VOLGORDE_WACHT_S=0) this test fails: the pause reaches only its
own woongemeente.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from herstelbus.core import contracts
from herstelbus.core.topology import STATUS, gemeente_events_topic
from herstelbus.processes import stop
from herstelbus.settings import get_settings
from herstelbus.topics import provision, wanted_topics
from tests.integration.kafka_read import bron_of
from tests.integration.router_world import AMSTERDAM, ROTTERDAM, World, _event, fresh_bsn, start_router

pytestmark = pytest.mark.kafka

BACKLOG = 600


def test_a_pause_waits_for_the_overdracht_published_before_it(kafka, tmp_path) -> None:
    provision(kafka.bootstrap, wanted_topics(get_settings().topic_policy(), dt.date(2025, 1, 1)), 1)
    world = World(tmp_path, kafka.bootstrap)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # Fresh people and a fresh dossier: the broker's routing memory outlives earlier tests.
    dossier = f"UHT-2024-{rng.randrange(10**6):06d}"
    ouder, partner = fresh_bsn(rng), fresh_bsn(rng)
    backlog = [_event("overdracht_volledig", gemeentecode=ROTTERDAM, dossiernummer=f"UHT-2023-{rng.randrange(10**6):06d}")
               for _ in range(BACKLOG)]
    overdracht = _event("overdracht_volledig", gemeentecode=AMSTERDAM, dossiernummer=dossier)
    overdracht["persoon"]["bsn"] = ouder
    pauze = _event("pauzeknop_start", rol="TOESLAGPARTNER", gemeentecode=ROTTERDAM, dossiernummer=dossier)
    pauze["persoon"]["bsn"] = partner

    # Published in this order while no router runs, as during an outage.
    positions = world.publish([*backlog, overdracht]) + world.publish([pauze])
    pauze_at = positions[-1]
    log = tmp_path / "router.log"
    proc = start_router(world, log, wait_ready=False)
    try:
        seen = world.read(STATUS, lambda seen: proc.poll() is not None or set(positions) <= {
            bron_of(contracts.decode(m.value)[1]) for m in seen}, timeout=200)
    finally:
        exit_code = stop(proc, timeout_s=30)
    tail = f"seed {seed}\n" + log.read_text(errors="replace")[-3000:]
    receipts = {bron_of(r): r for r in (contracts.decode(m.value)[1] for m in seen)}
    assert set(positions) <= set(receipts), tail

    doelen = {d["gemeentecode"]: d["reden"] for d in receipts[pauze_at]["doelen"]}
    assert doelen == {ROTTERDAM: "WOONGEMEENTE", AMSTERDAM: "EERDER_BETROKKEN"}, tail
    # ...and Amsterdam has it, and opens it.
    topic = gemeente_events_topic(AMSTERDAM)
    mine = [m for m in world.read(topic, lambda got: pauze["event_id"] in {dict(m.headers)["ce_id"].decode() for m in got},
                                  timeout=30)
            if dict(m.headers)["ce_id"].decode() == pauze["event_id"]]
    (opened,) = world.open_all(AMSTERDAM, mine)
    assert opened["persoon"]["bsn"] == partner and opened["actie"] == "START"
    assert exit_code == 0, tail
    world.store.close()
