"""The key store's gemeente API (services/keystore/openapi.yaml) from a synchronous SDK: stdlib
``http.client`` on one kept-alive connection, no extra dependency.

Failures are ``SleutelkluisFout`` with the HTTP status or a fixed cause, never the response body
(it could echo a request value) and never the token. A key store that is away (connection refused
or reset, timeout, 429, 502/503/504: a restart, a deploy, its database down) is waited for with
backoff, for ever by default, as the router waits: a long-running consumer must ride out a key store
deploy. ``retry_for_s`` bounds the wait (``gemeente consume --once``).

Besides keys and announcements: the gemeente's forget notices (``vergeetverzoeken``) and their
confirmation, on the same connection, retries and errors.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from herstelbus.core.privacy import KeyRef, KeyRowState, WrappedKey, is_pseudonym
from herstelbus.errors import HerstelbusError
from herstelbus.logs import get_logger

from .backoff import Backoff, parse_retry_after

MAX_REFS = 1000  # openapi.yaml ReleaseRequest.refs.maxItems
DEFAULT_PURPOSE = "herstel-kot"
AWAY = frozenset({429, 502, 503, 504})  # the key store (or what is in front of it) is there again soon
log = get_logger("herstelbus.gemeente")


class SleutelkluisFout(HerstelbusError):
    """The key store did not answer as the API says: the batch is not opened and not committed."""


@dataclass(frozen=True, slots=True)
class Vergeetverzoek:
    """A forget notice: ``subject`` (a pseudonym) was erased at the exchange (``gewist_op``, ISO
    8601 UTC; ``audit_id`` names the erasure's audit record). Delete what you hold about it, then
    confirm. No personal data."""

    subject: str
    audit_id: str
    gewist_op: str


class Sleutelkluis:
    def __init__(self, base_url: str, token: str, gemeentecode: str, *, purpose: str = DEFAULT_PURPOSE,
                 timeout_s: float = 30.0, retry_for_s: float | None = None, backoff: Backoff = Backoff(),
                 sleep=time.sleep, clock=time.monotonic) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SleutelkluisFout("key store URL: http(s)://host[:port] expected")
        if not token:
            raise SleutelkluisFout("no key store token (HERSTELBUS_GEMEENTE_TOKEN)")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")
        self._token, self.gemeentecode, self.purpose, self._timeout = token, gemeentecode, purpose, timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0  # for tests and the benchmark: one release per poll batch
        self.retry_for_s, self._backoff, self._sleep, self._clock = retry_for_s, backoff, sleep, clock

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._netloc, timeout=self._timeout)
        return self._conn

    def _call(self, method: str, path: str, body: Any = None, trace: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if trace:
            headers["traceparent"] = trace
        self.requests += 1
        what = f"{method} {path.split('?')[0]}"
        started, attempt = self._clock(), 0
        while True:
            try:
                status, payload, retry_after = self._once(method, path, data, headers)
                if status not in AWAY:
                    break
                why, wait = f"HTTP {status}", parse_retry_after(retry_after)
            except SleutelkluisFout as away:
                why, wait = str(away), None
            attempt += 1
            wait = self._backoff.delay(attempt) if wait is None else wait
            if self.retry_for_s is not None and self._clock() - started + wait > self.retry_for_s:
                raise SleutelkluisFout(f"key store away for {self.retry_for_s:.0f}s ({why}) on {what}")
            log.warning("keystore_away_retrying", gemeentecode=self.gemeentecode, cause=why, retry_in_s=round(wait, 2))
            self._sleep(wait)
        if status != 200:
            raise SleutelkluisFout(f"key store answered HTTP {status} on {what}")
        try:
            return json.loads(payload)
        except ValueError:
            raise SleutelkluisFout(f"key store answered no JSON on {what}") from None

    def _once(self, method: str, path: str, data: bytes | None, headers: dict) -> tuple[int, bytes, str | None]:
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: reconnect once
            try:
                conn = self._connection()
                conn.request(method, self._prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read(), resp.getheader("Retry-After")
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2:
                    raise SleutelkluisFout(f"key store unreachable ({type(exc).__name__})") from None
        raise AssertionError("unreachable")

    def aankondigingen(self, kek_ids: Sequence[str]) -> dict[str, bytes]:
        """The signed announcement bytes per KEK id the store knows (unverified: the caller adds
        them to its ``OpeningKeyring``, which checks the signature)."""
        if not kek_ids:
            return {}
        query = urlencode([("kek_id", k) for k in sorted(set(kek_ids))])
        answer = self._call("GET", f"/v1/gemeenten/{self.gemeentecode}/key-epochs?{query}")
        return {e["kek_id"]: base64.b64decode(e["announcement"]) for e in answer["epochs"]}

    def sleutels(self, refs: Sequence[KeyRef]) -> list[WrappedKey | KeyRowState]:
        """One result per ref, in order: the wrapped key, or ERASED / MISSING. One request per
        ``MAX_REFS`` refs (one per poll batch at the SDK's batch size)."""
        out: list[WrappedKey | KeyRowState] = []
        trace = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"  # joins the store's release log
        for start in range(0, len(refs), MAX_REFS):
            chunk = refs[start:start + MAX_REFS]
            answer = self._call("POST", f"/v1/gemeenten/{self.gemeentecode}/keys", {
                "purpose": self.purpose,
                "refs": [{"subject": r.subject, "event_id": r.event_id, "key_id": r.key_id} for r in chunk],
            }, trace)
            keys = answer["keys"]
            if len(keys) != len(chunk):
                raise SleutelkluisFout("key store answered a different number of keys than asked")
            for ref, k in zip(chunk, keys):
                if k["state"] == "released":
                    out.append(WrappedKey(self.gemeentecode, ref.subject, ref.event_id, ref.key_id,
                                          base64.b64decode(k["wrapped"])))
                else:
                    out.append(KeyRowState.ERASED if k["state"] == "erased" else KeyRowState.MISSING)
        return out

    def vergeetverzoeken(self) -> list[Vergeetverzoek]:
        """This gemeente's pending forget notices (at most ``MAX_REFS`` per call, oldest first)."""
        answer = self._call("GET", f"/v1/gemeenten/{self.gemeentecode}/vergeetverzoeken")
        try:
            verzoeken = [Vergeetverzoek(v["subject"], v["audit_id"], v["gewist_op"])
                         for v in answer["vergeetverzoeken"]]
        except (KeyError, TypeError):
            raise SleutelkluisFout("key store answered a malformed vergeetverzoeken list") from None
        if not all(is_pseudonym(v.subject) and isinstance(v.audit_id, str) for v in verzoeken):
            raise SleutelkluisFout("key store answered a forget notice without a pseudonym")  # no value echoed
        return verzoeken

    def bevestig_vergeten(self, subjects: Sequence[str]) -> int:
        """Confirm the forget notices of ``subjects`` (applied by the sink); how many the key store
        confirmed now (0 for those confirmed before: repeating is harmless)."""
        wanted = sorted(set(subjects))
        bevestigd = 0
        for start in range(0, len(wanted), MAX_REFS):
            answer = self._call("POST", f"/v1/gemeenten/{self.gemeentecode}/vergeetverzoeken/bevestiging",
                                {"subjects": wanted[start:start + MAX_REFS]})
            if not isinstance(answer, dict) or not isinstance(answer.get("bevestigd"), int):
                raise SleutelkluisFout("key store answered a malformed confirmation")
            bevestigd += answer["bevestigd"]
        return bevestigd

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


__all__ = ["DEFAULT_PURPOSE", "MAX_REFS", "Sleutelkluis", "SleutelkluisFout", "Vergeetverzoek"]
