"""The gemeente HTTP API of the key store (aiohttp), documented in ``openapi.yaml`` beside this file.

Thin: parse, ask :mod:`.policy`, call :class:`.store.GemeenteAccess` in a worker thread, answer
JSON. Besides keys and announcements a gemeente pulls its forget notices here (``vergeetverzoeken``)
and confirms the ones it applied. There is no route that writes keys and none that serves a
wrapped key to anyone but the gemeente it was wrapped for: the exchange writes through
:class:`.store.ExchangeWriter`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from herstelbus.core.privacy import is_pseudonym
from herstelbus.logs import get_logger

from . import policy
from .errors import InvalidRequest, KeystoreUnavailable
from .store import GemeenteAccess

OPENAPI = Path(__file__).with_name("openapi.yaml")
ACCESS: web.AppKey[GemeenteAccess] = web.AppKey("access", GemeenteAccess)
log = get_logger("herstelbus.keystore.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refusal(cls: type[web.HTTPException], code: str, detail: str | None = None, **headers: str) -> web.HTTPException:
    body = {"error": code} | ({"detail": detail} if detail else {})
    return cls(text=json.dumps(body), content_type="application/json", headers=headers or None)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InvalidRequest as exc:
        raise _refusal(web.HTTPBadRequest, "invalid_request", str(exc)) from None
    except KeystoreUnavailable as exc:
        log.error("keystore_unavailable", path=request.path, reason=str(exc))
        raise _refusal(web.HTTPServiceUnavailable, "keystore_unavailable") from None


async def _gemeente(request: web.Request) -> str:
    """The path's gemeentecode, once the bearer token proves the caller is that gemeente."""
    gemeentecode = request.match_info["gemeentecode"]
    token = policy.bearer_token(request.headers.get("Authorization"))
    caller = await asyncio.to_thread(request.app[ACCESS].authenticate, token) if token else None
    access = policy.authorise(caller, gemeentecode)
    if access is policy.Access.UNAUTHENTICATED:
        raise _refusal(web.HTTPUnauthorized, "unauthenticated",
                       **{"WWW-Authenticate": 'Bearer realm="herstelbus-sleutelkluis"'})
    if access is policy.Access.FORBIDDEN:
        log.warning("keystore_forbidden", caller=caller, gemeentecode=gemeentecode, path=request.path)
        raise _refusal(web.HTTPForbidden, "forbidden", "a gemeente reads only its own keys and notices")
    return gemeentecode


async def health(request: web.Request) -> web.Response:
    ok = await asyncio.to_thread(request.app[ACCESS].ping)
    return web.json_response({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise InvalidRequest("body: JSON expected") from None


async def release_keys(request: web.Request) -> web.Response:
    gemeentecode = await _gemeente(request)
    body = await _json(request)
    if not isinstance(body, dict) or set(body) - {"purpose", "refs"}:
        raise InvalidRequest("body: an object with purpose and refs is expected")
    purpose = policy.check_purpose(body.get("purpose"))
    refs = policy.parse_refs(gemeentecode, body.get("refs"))
    trace = policy.trace_from(request.headers.get("traceparent"))
    results = await asyncio.to_thread(request.app[ACCESS].release, gemeentecode, refs, purpose, trace)
    keys = []
    for ref, res in zip(refs, results, strict=True):
        item = {"subject": ref.subject, "event_id": ref.event_id, "key_id": ref.key_id, "state": policy.state_name(res)}
        if item["state"] == policy.STATE_RELEASED:
            item["wrapped"] = base64.b64encode(res.wrapped).decode("ascii")  # type: ignore[union-attr]
        keys.append(item)
    released = sum(k["state"] == policy.STATE_RELEASED for k in keys)
    log.info("keys_released", gemeentecode=gemeentecode, requested=len(keys), released=released,
             trace_id=trace.trace_id)
    return web.json_response({"trace_id": trace.trace_id, "keys": keys})


async def key_epochs(request: web.Request) -> web.Response:
    gemeentecode = await _gemeente(request)
    kek_ids = request.query.getall("kek_id", [])
    since = request.query.get("since")
    since_dt = None
    if since is not None:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidRequest("since: an ISO 8601 date-time with offset is expected") from None
        if since_dt.tzinfo is None:
            raise InvalidRequest("since: an ISO 8601 date-time with offset is expected")
    epochs = await asyncio.to_thread(request.app[ACCESS].announcements, gemeentecode, kek_ids, since_dt)
    return web.json_response({"epochs": [
        {
            "kek_id": ep.kek_id,
            "recipient_key_id": ep.recipient_key_id,
            "signer_key_id": ep.signer_key_id,
            "not_before": ep.not_before.isoformat(),
            "not_after": ep.not_after.isoformat(),
            "announcement": base64.b64encode(ep.to_bytes()).decode("ascii"),
        }
        for ep in epochs
    ]})


async def forget_notices(request: web.Request) -> web.Response:
    """The gemeente's pending forget notices (AVG art. 19): subjects erased after it received them."""
    gemeentecode = await _gemeente(request)
    notices = await asyncio.to_thread(request.app[ACCESS].forget_notices, gemeentecode)
    log.info("forget_notices_served", gemeentecode=gemeentecode, pending=len(notices))
    return web.json_response({"vergeetverzoeken": [
        {"subject": n.subject, "audit_id": n.audit_id, "gewist_op": n.created_at.astimezone(timezone.utc).isoformat()}
        for n in notices
    ]})


def _parse_subjects(body: Any) -> list[str]:
    """``{"subjects": [pseudonym, ...]}``: 1 to ``policy.MAX_BATCH`` pseudonyms (no value is echoed)."""
    if not isinstance(body, dict) or set(body) != {"subjects"}:
        raise InvalidRequest("body: an object with only subjects is expected")
    items = body["subjects"]
    if not isinstance(items, list) or not items:
        raise InvalidRequest("subjects: a non-empty list is required")
    if len(items) > policy.MAX_BATCH:
        raise InvalidRequest(f"subjects: at most {policy.MAX_BATCH} per request")
    for i, subject in enumerate(items):
        if not is_pseudonym(subject):
            raise InvalidRequest(f"subjects[{i}]: not a pseudonym")
    return items


async def confirm_forget_notices(request: web.Request) -> web.Response:
    """The gemeente applied these forget notices; only its own pending ones are confirmed."""
    gemeentecode = await _gemeente(request)
    subjects = _parse_subjects(await _json(request))
    confirmed = await asyncio.to_thread(request.app[ACCESS].confirm_forget_notices, gemeentecode, subjects)
    log.info("forget_notices_confirmed", gemeentecode=gemeentecode, requested=len(set(subjects)), confirmed=confirmed)
    return web.json_response({"bevestigd": confirmed})


def create_app(access: GemeenteAccess) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[ACCESS] = access
    app.router.add_get("/v1/health", health)
    app.router.add_post("/v1/gemeenten/{gemeentecode}/keys", release_keys)
    app.router.add_get("/v1/gemeenten/{gemeentecode}/key-epochs", key_epochs)
    app.router.add_get("/v1/gemeenten/{gemeentecode}/vergeetverzoeken", forget_notices)
    app.router.add_post("/v1/gemeenten/{gemeentecode}/vergeetverzoeken/bevestiging", confirm_forget_notices)
    return app
