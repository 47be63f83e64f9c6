"""The ASGI app: ``/`` (the page), ``/api/overzicht`` (the same view model as JSON), ``/healthz``.

Both views take ``?gemeente=GMxxxx``. The acks counts come from the acks state per request (the
same rows as ``herstelbus status``); the Kafka counts from the reader's latest snapshot. Sync
handlers: Starlette runs them in its thread pool, so a slow database never blocks the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from herstelbus.core.ops.dashboard import GEMEENTECODE, Momentopname, view

from .page import render


def _tz() -> tzinfo:
    try:
        return ZoneInfo("Europe/Amsterdam")  # ops count days as they live them
    except ZoneInfoNotFoundError:  # no tz database on this machine: UTC days rather than no page
        return timezone.utc


TZ = _tz()
StatusRows = Callable[[str | None], list[dict[str, Any]]]


class Bron(Protocol):
    """What the app reads: the reader, or a stand-in."""

    def momentopname(self) -> Momentopname: ...
    def toestand(self) -> dict[str, Any]: ...


def create_app(bron: Bron, status_rows: StatusRows, vandaag: Callable[[], date] | None = None) -> Starlette:
    today = vandaag or (lambda: datetime.now(TZ).date())

    def _view(request: Request) -> dict[str, Any] | Response:
        gemeente = request.query_params.get("gemeente") or None
        if gemeente is not None and not GEMEENTECODE.fullmatch(gemeente):
            return PlainTextResponse("gemeente: GM gevolgd door vier cijfers", status_code=400)
        return view(status_rows(gemeente), bron.momentopname(), gemeente=gemeente, vandaag=today())

    def pagina(request: Request) -> Response:
        v = _view(request)
        return v if isinstance(v, Response) else HTMLResponse(render(v, bron.toestand()))

    def overzicht(request: Request) -> Response:
        v = _view(request)
        return v if isinstance(v, Response) else JSONResponse({**v, "kafka": bron.toestand()})

    def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "kafka": bron.toestand()})

    return Starlette(routes=[Route("/", pagina), Route("/api/overzicht", overzicht), Route("/healthz", healthz)])
