"""``herstelbus dashboard``: the ops web dashboard."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8480, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
def dashboard(host: str, port: int) -> None:
    """Web dashboard for ops: per gemeente routed/ontvangen/verwerkt/geweigerd/overdue, dead letters,
    unroutable events, recent audit entries, events per day. No personal data."""
    import uvicorn

    from herstelbus.acks.cli import status_rows
    from herstelbus.core.ops.dashboard import Overzicht
    from herstelbus.logs import configure_logging, get_logger
    from herstelbus.settings import get_settings

    from .app import TZ, create_app
    from .reader import OpsLezer

    settings = get_settings()
    configure_logging(settings)
    lezer = OpsLezer(settings.bootstrap, Overzicht(tz=TZ))
    lezer.start()
    get_logger(__name__).info("dashboard.start", url=f"http://{host}:{port}/")
    try:
        # log_config=None: uvicorn's loggers go through herstelbus' one chain (logs.py).
        uvicorn.run(create_app(lezer, status_rows), host=host, port=port, log_config=None, access_log=False)
    finally:
        lezer.stop()
        lezer.join(timeout=5)


COMMANDS = (dashboard,)
