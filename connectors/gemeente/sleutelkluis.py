"""The key store's gemeente API (services/keystore/openapi.yaml) from a synchronous SDK: stdlib
``http.client`` on one kept-alive connection, no extra dependency.

Failures are ``SleutelkluisFout`` with the HTTP status or a fixed cause, never the response body
(it could echo a request value) and never the token.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from herstelbus.core.privacy import KeyRef, KeyRowState, WrappedKey
from herstelbus.errors import HerstelbusError

MAX_REFS = 1000  # openapi.yaml ReleaseRequest.refs.maxItems
DEFAULT_PURPOSE = "herstel-kot"


class SleutelkluisFout(HerstelbusError):
    """The key store did not answer as the API says: the batch is not opened and not committed."""


class Sleutelkluis:
    def __init__(self, base_url: str, token: str, gemeentecode: str, *, purpose: str = DEFAULT_PURPOSE,
                 timeout_s: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SleutelkluisFout("key store URL: http(s)://host[:port] expected")
        if not token:
            raise SleutelkluisFout("no key store token (HERSTELBUS_GEMEENTE_TOKEN)")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")
        self._token, self.gemeentecode, self.purpose, self._timeout = token, gemeentecode, purpose, timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0  # for tests and the benchmark: one release per poll batch

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
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: reconnect once
            try:
                conn = self._connection()
                conn.request(method, self._prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2:
                    raise SleutelkluisFout(f"key store unreachable ({type(exc).__name__})") from None
        if resp.status != 200:
            raise SleutelkluisFout(f"key store answered HTTP {resp.status} on {method} {path.split('?')[0]}")
        try:
            return json.loads(payload)
        except ValueError:
            raise SleutelkluisFout(f"key store answered no JSON on {method} {path.split('?')[0]}") from None

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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


__all__ = ["DEFAULT_PURPOSE", "MAX_REFS", "Sleutelkluis", "SleutelkluisFout"]
