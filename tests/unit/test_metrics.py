"""herstelbus.metrics without a broker: counting a batch, label values, key-store timing, /healthz
and the HTTP endpoint (issue 7). Counters are process-wide, so every check compares before/after."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from herstelbus import metrics
from herstelbus.faustkit import Progress
from herstelbus.keystore.errors import KeyConflict, KeystoreUnavailable


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class _Plan:
    record_type: str
    outputs: list = field(default_factory=list)


def _event(published_at: float) -> Any:
    return SimpleNamespace(message=SimpleNamespace(timestamp=published_at))


def _out(topic: str) -> Any:
    return SimpleNamespace(topic=topic)


def test_a_label_value_is_a_code_or_other() -> None:
    for good in ("MARKER_ONGELDIG", "VOW", "EERDER_BETROKKEN_OVERGESLAGEN", "ONTVANGEN"):
        assert metrics.code(good) == good
    # A BSN, a name, an e-mail address, an event id, nothing: never a label value.
    for bad in ("111222333", "Jansen", "a@b.nl", "0b7f0c7e-1b1a-4c52-9d57-2f6a2f0f7d11", None, "",
                "VOW\n", "X" * 65, 42):
        assert metrics.code(bad) == metrics.OTHER


def test_a_routed_batch_counts_per_label_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics.time, "time", lambda: 1000.0)
    gm, letter, held = _out("gemeente.GM0363.events.v1"), _out("herstel.deadletter.v1"), _out("herstel.unroutable.v1")
    planned = [
        (_event(999.5), None, _Plan("overdracht", [gm])),
        (_event(999.0), None, _Plan("pauzeknop", [gm, _out("gemeente.GM0599.events.v1"), held])),  # overgeslagen
        (_event(998.0), None, _Plan("overdracht", [letter])),
        (_event(997.0), None, _Plan("overdracht", [held])),
        (_event(996.0), None, _Plan("erkenning", [])),  # DUPLICATE
        (_event(995.0), None, _Plan("overdracht", [])),  # a redelivered INVALID: its stored receipt again
    ]
    receipts = [
        {"status": "ROUTED"},
        {"status": "ROUTED", "overgeslagen": [{"gemeentecode": "GM0457", "reden": "SPLITSING"}]},
        {"status": "INVALID", "reden": "MARKER_ONGELDIG"},
        {"status": "UNROUTABLE", "reden": "VOW"},
        {"status": "DUPLICATE", "reden": "EVENT_ID_AL_GEROUTEERD"},
        {"status": "INVALID", "reden": "MARKER_ONGELDIG"},
    ]
    outs = [o for _, _, plan in planned for o in plan.outputs]
    names = {
        "routed": ("herstelbus_router_events_in_total", {"type": "overdracht", "outcome": "ROUTED"}),
        "invalid": ("herstelbus_router_events_in_total", {"type": "overdracht", "outcome": "INVALID"}),
        "dup": ("herstelbus_router_events_in_total", {"type": "erkenning", "outcome": "DUPLICATE"}),
        "pause": ("herstelbus_router_events_in_total", {"type": "pauzeknop", "outcome": "ROUTED"}),
        "to_gemeente": ("herstelbus_router_records_out_total", {"kind": "gemeente"}),
        "to_status": ("herstelbus_router_records_out_total", {"kind": "status"}),
        "to_unroutable": ("herstelbus_router_records_out_total", {"kind": "unroutable"}),
        "to_deadletter": ("herstelbus_router_records_out_total", {"kind": "deadletter"}),
        "letters": ("herstelbus_deadletters_total", {"component": "router", "reason": "MARKER_ONGELDIG"}),
        "vow": ("herstelbus_unroutable_total", {"component": "router", "reason": "VOW"}),
        "skipped": ("herstelbus_unroutable_total", {"component": "router", "reason": "EERDER_BETROKKEN_OVERGESLAGEN"}),
        "latency_n": ("herstelbus_router_latency_seconds_count", {}),
        "latency_sum": ("herstelbus_router_latency_seconds_sum", {}),
        "within_1s": ("herstelbus_router_latency_seconds_bucket", {"le": "1.0"}),
    }
    before = {k: value(n, **lb) for k, (n, lb) in names.items()}
    metrics.routed(planned, receipts, outs)
    delta = {k: value(n, **lb) - before[k] for k, (n, lb) in names.items()}
    assert delta == {
        "routed": 1, "invalid": 2, "dup": 1, "pause": 1,
        "to_gemeente": 3, "to_status": 6, "to_unroutable": 2, "to_deadletter": 1,
        "letters": 1,  # the redelivered one wrote no new dead letter
        "vow": 1, "skipped": 1,
        "latency_n": 6, "latency_sum": 0.5 + 1 + 2 + 3 + 4 + 5, "within_1s": 2,
    }


def test_counting_never_raises_into_the_worker() -> None:
    metrics.routed([(None, None, None)], [{"status": "ROUTED"}], [])  # a bug in the inputs: logged
    metrics.overdue(o.missing for o in [object()])


def test_acks_are_counted_by_status_and_outcome() -> None:
    accepted = ("herstelbus_acks_in_total", {"status": "ONTVANGEN", "outcome": "geaccepteerd"})
    lettered = ("herstelbus_acks_in_total", {"status": "OTHER", "outcome": "deadletter"})
    letters = ("herstelbus_deadletters_total", {"component": "acks", "reason": "MARKER_ONGELDIG"})
    held = ("herstelbus_unroutable_total", {"component": "acks", "reason": "NIET_ONZE_INWONER"})
    late = ("herstelbus_acks_overdue_total", {"reason": "VERWERKT_TE_LAAT"})
    latency = ("herstelbus_acks_latency_seconds_count", {})
    tracked = [accepted, lettered, letters, held, late, latency]
    before = [value(n, **lb) for n, lb in tracked]
    metrics.ack_judged("ONTVANGEN", "geaccepteerd")
    metrics.ack_judged("GEWEIGERD", "geaccepteerd", "NIET_ONZE_INWONER")
    metrics.ack_dead_letter("MARKER_ONGELDIG")
    metrics.overdue(["VERWERKT_TE_LAAT", "VERWERKT_TE_LAAT", "ONTVANGEN_TE_LAAT"])
    metrics.ack_relayed(None)  # no timestamp: nothing observed
    metrics.ack_relayed(1.0)
    assert [value(n, **lb) - b for (n, lb), b in zip(tracked, before)] == [1, 1, 1, 1, 2, 1]


def test_keystore_calls_are_timed_by_outcome_and_the_error_passes_through() -> None:
    def count(outcome: str) -> float:
        return value("herstelbus_keystore_call_duration_seconds_count", call="put_wrapped_keys", outcome=outcome)

    before = {o: count(o) for o in ("ok", "unavailable", "refused", "error")}
    with metrics.keystore_call("put_wrapped_keys"):
        pass
    for exc in (KeystoreUnavailable("down"), KeyConflict("k1"), RuntimeError("bug")):
        with pytest.raises(type(exc)), metrics.keystore_call("put_wrapped_keys"):
            raise exc
    assert {o: count(o) - before[o] for o in before} == {"ok": 1, "unavailable": 1, "refused": 1, "error": 1}


def test_lag_per_topic_sums_owned_partitions() -> None:
    assert metrics.consumer_lag_per_topic([
        ("gemeente.GM0363.acks.v1", 10, 7), ("uht.status.v1", 5, 5), ("uht.status.v1", 9, 4),
        ("gemeente.GM0599.acks.v1", None, None),  # not fetched yet: unknown, left out
        ("gemeente.GM0014.acks.v1", 3, None),  # never committed: from the start
        ("gemeente.GM0518.acks.v1", 2, 5),  # committed past a highwater not refreshed yet
    ]) == {"gemeente.GM0363.acks.v1": 3, "uht.status.v1": 5, "gemeente.GM0014.acks.v1": 3,
           "gemeente.GM0518.acks.v1": 0}


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_healthz_is_503_until_the_watchdog_ticked_then_200() -> None:
    progress, clock = Progress(), _Clock()
    health = metrics.Health("router", progress, stall_after_s=15, clock=clock)
    assert health.report() == (503, {"worker": "router", "up": False, "partitions_assigned": 0,
                                     "seconds_since_last_batch": None, "reason": "starting"})
    progress.checked_at, progress.assigned = 99.0, 3
    assert health.report() == (200, {"worker": "router", "up": True, "partitions_assigned": 3,
                                     "seconds_since_last_batch": None})
    progress.finished_at = 97.5
    assert health.report()[1]["seconds_since_last_batch"] == 2.5


def test_healthz_is_503_when_the_event_loop_stopped_or_partitions_stalled() -> None:
    progress, clock = Progress(), _Clock()
    health = metrics.Health("acks", progress, stall_after_s=15, clock=clock)
    progress.checked_at = 90.0
    assert health.report()[0] == 200
    clock.now = 106.0  # no watchdog tick for 16 s: the loop is blocked, nobody else would notice
    assert health.report() == (503, {"worker": "acks", "up": False, "partitions_assigned": 0,
                                     "seconds_since_last_batch": None, "reason": "event_loop_blocked"})
    progress.checked_at, progress.stalled = 106.0, True
    assert health.report()[1]["reason"] == "stalled"


def test_progress_notes_when_a_batch_finished() -> None:
    progress = Progress()
    with progress.batch():
        assert progress.finished_at is None
    assert progress.finished_at is not None


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_the_endpoint_serves_metrics_and_healthz_over_http() -> None:
    progress = Progress()
    server = metrics.start_http("127.0.0.1", 0, metrics.wsgi_app(metrics.Health("router", progress, 15)))
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        status, kind, body = _get(f"{base}/healthz")
        assert (status, kind, json.loads(body)["reason"]) == (503, "application/json", "starting")
        progress.checked_at, progress.assigned = metrics.time.monotonic(), 2
        status, _, body = _get(f"{base}/healthz")
        assert status == 200 and json.loads(body)["partitions_assigned"] == 2
        status, kind, body = _get(f"{base}/metrics")
        assert status == 200 and kind.startswith("text/plain")
        assert b"# TYPE herstelbus_router_latency_seconds histogram" in body
        assert b"# TYPE herstelbus_keystore_call_duration_seconds histogram" in body
        assert _get(f"{base}/")[0] == 404
        with pytest.raises(OSError):  # taken: the caller logs it and runs on without metrics
            metrics.start_http("127.0.0.1", server.server_port, metrics.wsgi_app(metrics.Health("acks", progress, 15)))
    finally:
        server.shutdown()
        server.server_close()


def test_port_0_serves_nothing() -> None:
    class NoApp:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"app.{name} used with the metrics port off")

    metrics.serve(NoApp(), "router", ["uht.overdracht.v1"], Progress(), stall_after_s=15, host="127.0.0.1", port=0)


def test_a_metrics_port_is_off_by_default_for_both_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from herstelbus.acks.settings import AcksSettings
    from herstelbus.router.settings import RouterSettings

    monkeypatch.delenv("HERSTELBUS_METRICS_PORT", raising=False)
    assert RouterSettings().metrics_port == 0 and AcksSettings().metrics_port == 0
    monkeypatch.setenv("HERSTELBUS_METRICS_PORT", "9464")
    assert RouterSettings().metrics_port == 9464 and AcksSettings().metrics_port == 9464

