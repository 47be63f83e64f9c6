"""The smoke relay: bytes in, the same bytes and headers out, plus a hop header."""

from __future__ import annotations

import faust

from herstelbus.faustkit import make_app
from herstelbus.settings import Settings

HOP_HEADER = "herstelbus_hop"


def create_app(settings: Settings, app_id: str, source: str, sink: str) -> faust.App:
    app = make_app(app_id, settings)
    # Raw bytes: decoding belongs inside the agent, so a bad payload can be dead-lettered later.
    inbound = app.topic(source, key_serializer="raw", value_serializer="raw")
    outbound = app.topic(sink, key_serializer="raw", value_serializer="raw")

    @app.agent(inbound)
    async def relay(stream: faust.StreamT) -> None:
        async for event in stream.events():
            headers = list(event.headers.items()) if isinstance(event.headers, dict) else list(event.headers)
            headers.append((HOP_HEADER, app_id.encode()))
            await outbound.send(key=event.key, value=event.value, headers=headers)

    return app
