"""``webhook:URL``: one HTTP POST per event, a CloudEvent in structured JSON mode, following the NL
GOV CloudEvents webhook guideline.

Request::

    POST URL
    Content-Type: application/cloudevents+json
    Idempotency-Key: <event_id>                       (also the CloudEvent ``id``)
    Authorization: Bearer <HERSTELBUS_WEBHOOK_TOKEN>  (only when that variable is set)
    X-Herstelbus-Timestamp: <unix seconds>
    X-Herstelbus-Signature: sha256=<hex HMAC-SHA256(HERSTELBUS_WEBHOOK_SECRET, "<timestamp>." + body)>

    {"specversion": "1.0", "id": <event_id>, "source": "urn:nld:oin:<OIN>:systeem:gemeente-sdk",
     "type": "nl.toeslagen.herstel.<type>.v1", "subject": <pseudonym>, "time": ..., "sequence": "0000000003",
     "datacontenttype": "application/json", "data": <the jsonl sink's line object>}

The receiver verifies the signature (``verify_signature``), refuses timestamps older than a few
minutes (replays), and deduplicates by ``id``: the sink keeps no state of its own, so delivery is
at least once and "exactly once in effect" is the receiver's dedupe. Any 2xx is success. Connection
errors, timeouts and 5xx are retried with exponential backoff and full jitter, 429 after its
``Retry-After``, all within ``max_wait`` seconds per event; then, and on 410 Gone (the subscriber is
gone) or any other status, ``SinkFout`` is raised and the consumer commits nothing of the batch.
Errors and logs name the event id and the HTTP status only, never the body.

Forget notices (``vergeet``): when the exchange erased a subject this gemeente received, one POST
per subject to the same URL, signed and authorised as above and retried the same way, but plain
JSON (``Content-Type: application/json``, ``Idempotency-Key: vergeetverzoek:<subject>``)::

    {"type": "vergeetverzoek", "subject": <pseudonym>, "audit_id": <the erasure's audit id>}

The receiver deletes what it holds of that subject and answers 2xx; only then is the notice
confirmed to the key store. Until then it comes again (dedupe by the key).
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from herstelbus.core.contracts import source_urn
from herstelbus.core.contracts.envelope import SPECVERSION, ce_type, format_sequence
from herstelbus.core.contracts.jsonlines import format_timestamp

from .backoff import Backoff, parse_retry_after
from .bevestiging import SYSTEEM, placeholder_oin
from .jsonl import regel
from .resultaat import Geopend
from .sinks import Schrijfverslag, SinkFout
from .volgorde import Volgorde

CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Herstelbus-Signature"
TIMESTAMP_HEADER = "X-Herstelbus-Timestamp"
TOKEN_ENV, SECRET_ENV = "HERSTELBUS_WEBHOOK_TOKEN", "HERSTELBUS_WEBHOOK_SECRET"
MIN_SECRET_BYTES = 32
REPLAY_WINDOW_S = 300
VERGEET_TYPE, VERGEET_CONTENT_TYPE = "vergeetverzoek", "application/json"


def _mac(secret: bytes, timestamp: str, body: bytes) -> hmac.HMAC:
    # The timestamp is inside the MAC: a captured request cannot be replayed later with a fresh one.
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(timestamp.encode("ascii") + b"." + body)
    return mac


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Herstelbus-Signature`` value."""
    return "sha256=" + _mac(secret, timestamp, body).finalize().hex()


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str, *, now: float | None = None,
                     window_s: int = REPLAY_WINDOW_S) -> bool:
    """For receivers: the signature matches (constant time) and the timestamp is within the window."""
    try:
        sent = int(timestamp)
        digest = bytes.fromhex(header.removeprefix("sha256=")) if header.startswith("sha256=") else b""
    except ValueError:
        return False
    if not digest or abs((time.time() if now is None else now) - sent) > window_s:
        return False
    try:
        _mac(secret, timestamp, body).verify(digest)
    except InvalidSignature:
        return False
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be replayed as GET or elsewhere: a 3xx is a configuration error.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Retry(Exception):
    def __init__(self, why: str, wait_s: float | None = None) -> None:
        self.why, self.wait_s = why, wait_s


def cloudevent(event: Geopend, source: str) -> dict[str, Any]:
    """The structured-mode CloudEvent of one opened event."""
    return {
        "specversion": SPECVERSION, "id": event.event_id, "source": source, "type": ce_type(event.type),
        "subject": event.subject, "time": format_timestamp(event.time or datetime.now(timezone.utc)),
        "sequence": format_sequence(event.sequence), "datacontenttype": "application/json", "data": regel(event),
    }


def vergeetverzoek(subject: str, audit_id: str | None) -> dict[str, Any]:
    """The body of a forget notice: ``subject`` (a pseudonym) was erased; delete what you hold of it."""
    return {"type": VERGEET_TYPE, "subject": subject, "audit_id": audit_id}


class WebhookSink:
    def __init__(self, url: str, gemeentecode: str, *, secret: str | None = None, token: str | None = None,
                 oin: str | None = None, max_wait_s: float = 300.0, timeout_s: float = 10.0,
                 backoff: Backoff = Backoff(), sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkFout("webhook sink: expected an http(s) URL, e.g. webhook:https://host/path")
        if parts.username or parts.password:
            raise SinkFout(f"webhook sink: no credentials in the URL; use {TOKEN_ENV}")
        self.url = url
        self.where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # errors never show the query
        secret = secret if secret is not None else os.environ.get(SECRET_ENV, "")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise SinkFout(f"webhook sink: set {SECRET_ENV} to a shared secret of at least {MIN_SECRET_BYTES} "
                           "bytes (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
        self._secret = secret.encode()
        self._token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.source = source_urn(oin or os.environ.get("HERSTELBUS_GEMEENTE_OIN") or placeholder_oin(gemeentecode),
                                 SYSTEEM)
        self.max_wait_s, self.timeout_s, self.backoff = max_wait_s, timeout_s, backoff
        self._sleep, self._clock = sleep, clock
        self._opener = urllib.request.build_opener(_NoRedirect)
        self.volgorde = Volgorde()  # in memory, this run only: gaps across restarts are the receiver's to see

    def schrijf(self, events: Sequence[Geopend]) -> Schrijfverslag:
        gaten = []
        for event in events:  # in order: the SDK has put each dossier's events in sequence
            body = json.dumps(cloudevent(event, self.source), ensure_ascii=False, separators=(",", ":")).encode()
            self._deliver(event.event_id, body)
            gat = self.volgorde.volg(event)
            if gat is not None:
                gaten.append(gat)
        # Without state the sink cannot tell new from redelivered: the receiver dedupes by id.
        return Schrijfverslag(tuple(e.event_id for e in events), (), tuple(gaten))

    def vergeet(self, subjects: Sequence[str], *, audit_ids: Mapping[str, str] | None = None) -> int:
        """Pass forget notices on: one signed POST per subject, ``vergeetverzoek(...)`` as plain JSON
        (``Content-Type: application/json``, ``Idempotency-Key: vergeetverzoek:<subject>``), with
        the events' token, signature and retries. Only a 2xx counts; the first notice that is not
        delivered raises ``SinkFout`` and none is confirmed (all come again: the receiver dedupes
        by the key). Returns the number of notices delivered."""
        done = 0
        for subject in dict.fromkeys(subjects):
            body = json.dumps(vergeetverzoek(subject, (audit_ids or {}).get(subject)), separators=(",", ":")).encode()
            self._deliver(f"{VERGEET_TYPE}:{subject}", body, VERGEET_CONTENT_TYPE, f"forget notice for {subject}")
            done += 1
        return done

    def _deliver(self, key: str, body: bytes, content_type: str = CONTENT_TYPE, what: str | None = None) -> None:
        """POST ``body`` with ``Idempotency-Key: key`` until a 2xx or ``max_wait`` passed; ``what``
        names it in errors (ids only; default: the event ``key``)."""
        what = what or f"event {key}"
        started, attempt = self._clock(), 0
        while True:
            try:
                return self._post(key, body, content_type, what)
            except _Retry as retry:
                wait = retry.wait_s if retry.wait_s is not None else self.backoff.delay(attempt)
                attempt += 1
                if self._clock() - started + wait > self.max_wait_s:
                    raise SinkFout(f"webhook sink {self.where}: {what} not delivered after "
                                   f"{attempt} attempts within {self.max_wait_s:g}s (last: {retry.why})") from None
                self._sleep(wait)

    def _post(self, key: str, body: bytes, content_type: str, what: str) -> None:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": content_type, "Idempotency-Key": key, TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: signature(self._secret, timestamp, body)}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read()  # drain so the connection closes cleanly; the body is not ours to log
                return
        except urllib.error.HTTPError as exc:
            status, retry_after = exc.code, exc.headers.get("Retry-After") if exc.headers else None
            exc.close()
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):  # will not heal by waiting
                raise SinkFout(f"webhook sink {self.where}: TLS certificate not trusted") from None
            raise _Retry(f"connection: {type(reason).__name__}") from None
        if status == 429:
            raise _Retry("HTTP 429", parse_retry_after(retry_after))
        if status >= 500:
            raise _Retry(f"HTTP {status}")
        if status == 410:
            raise SinkFout(f"webhook sink {self.where}: HTTP 410 Gone for {what}: the subscriber is "
                           "gone; nothing committed, fix the subscription or the --sink URL")
        raise SinkFout(f"webhook sink {self.where}: HTTP {status} for {what}; nothing committed")

    def close(self) -> None:
        pass


__all__ = ["Backoff", "CONTENT_TYPE", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "VERGEET_CONTENT_TYPE", "VERGEET_TYPE",
           "WebhookSink", "cloudevent", "parse_retry_after", "signature", "verify_signature", "vergeetverzoek"]
