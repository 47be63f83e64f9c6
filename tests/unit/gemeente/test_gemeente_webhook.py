"""The webhook sink's pure pieces: signature, Retry-After, backoff bounds, the CloudEvent body."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from herstelbus.connectors.gemeente.jsonl import regel
from herstelbus.connectors.gemeente.sinks import SinkFout
from herstelbus.connectors.gemeente.webhook import (
    Backoff, WebhookSink, cloudevent, parse_retry_after, signature, verify_signature,
)
from herstelbus.core.contracts import CE_TYPES

from .kit import GM, geopend

SECRET = b"s" * 32
NOW = 1_800_000_000


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    sig = signature(SECRET, str(NOW), b'{"a":1}')
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature(SECRET, str(NOW), b'{"a":1}', sig, now=NOW + 10)


@pytest.mark.parametrize("secret, ts, body, now", [
    (b"t" * 32, NOW, b'{"a":1}', NOW),  # other secret
    (SECRET, NOW, b'{"a":2}', NOW),  # body changed
    (SECRET, NOW + 1, b'{"a":1}', NOW),  # timestamp changed (it is inside the MAC)
    (SECRET, NOW, b'{"a":1}', NOW + 301),  # a replay after the window
])
def test_verification_fails_on_any_change_or_a_stale_timestamp(secret, ts, body, now) -> None:
    sig = signature(SECRET, str(NOW), b'{"a":1}')
    assert not verify_signature(secret, str(ts), body, sig, now=now)


@pytest.mark.parametrize("header", ["", "sha256=", "sha256=zz", "md5=00", "00" * 32])
def test_malformed_signature_headers_do_not_verify(header: str) -> None:
    assert not verify_signature(SECRET, str(NOW), b"x", header, now=NOW)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    assert parse_retry_after("1", now) == 1.0 and parse_retry_after(" 120 ", now) == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    for bad in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(bad, now) is None


def test_backoff_is_full_jitter_within_the_exponential_cap() -> None:
    b = Backoff(base_s=0.5, cap_s=8.0)
    upper = lambda lo, hi: hi  # noqa: E731
    assert [b.delay(n, upper) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert b.delay(10_000, upper) == 8.0  # no overflow on huge attempt counts
    rng = random.Random(1)
    samples = [b.delay(3, rng.uniform) for _ in range(500)]
    assert all(0.0 <= s <= 4.0 for s in samples) and min(samples) < 0.5 and max(samples) > 3.5


def test_cloudevent_is_structured_mode_with_the_jsonl_object_as_data() -> None:
    e = geopend()
    ce = cloudevent(e, "urn:nld:oin:00000001000363000000:systeem:gemeente-sdk")
    assert (ce["specversion"], ce["id"], ce["type"], ce["subject"], ce["datacontenttype"]) == (
        "1.0", e.event_id, CE_TYPES["overdracht"], e.subject, "application/json")
    assert ce["sequence"] == f"{e.sequence:010d}" and ce["time"].endswith("Z")
    assert ce["data"] == regel(e)


@pytest.mark.parametrize("url", ["ftp://h/x", "http://", "https://user:pw@h/x"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(SinkFout, match="webhook sink"):
        WebhookSink(url, GM, secret="s" * 32)


def test_a_secret_is_required(monkeypatch) -> None:
    monkeypatch.delenv("HERSTELBUS_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SinkFout, match="HERSTELBUS_WEBHOOK_SECRET"):
        WebhookSink("https://h/x", GM)
    monkeypatch.setenv("HERSTELBUS_WEBHOOK_SECRET", "kort")
    with pytest.raises(SinkFout, match="at least 32"):
        WebhookSink("https://h/x", GM)


def test_gaps_are_per_dossier_not_per_person() -> None:
    sink = WebhookSink("https://h/x", GM, secret="s" * 32)
    sink._post = lambda key, body, content_type, what: None  # delivery is test_webhook_sink's (integration) concern
    ouder = geopend(volgnummer=1)
    d, bsn = ouder.data["dossiernummer"], ouder.data["persoon"]["bsn"]
    partner = geopend("pauzeknop", dossiernummer=d, volgnummer=2)
    drie = geopend("pauzeknop", bsn, dossiernummer=d, volgnummer=3)
    verslag = sink.schrijf([ouder, partner, drie, geopend("erkenning", bsn, dossiernummer=d, volgnummer=4)])
    assert verslag.gaten == ()
    (gat,) = sink.schrijf([geopend("pauzeknop", partner.data["persoon"]["bsn"], dossiernummer=d, volgnummer=6)]).gaten
    assert (gat.subject, gat.verwacht, gat.gekregen, gat.soort) == (partner.subject, 5, 6, "gat")
