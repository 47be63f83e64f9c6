"""structlog, configured once for every herstelbus process.

JSON lines in production, a readable console in development. Whatever the renderer, the chain
ends with :func:`refuse_personal_data`: personal data never reaches a log line, even when a
caller passes it by mistake. Only pseudonyms and event ids belong in logs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

from herstelbus.core.bsn import BSN_IN_TEXT, is_valid_bsn
from herstelbus.settings import Settings, get_settings

#: Keys (or parts of snake/dotted keys, e.g. ``toeslagpartner_bsn``) whose values are personal data.
PERSONAL_DATA_KEYS = frozenset(
    {
        "bsn", "naam", "voornamen", "voornaam", "achternaam", "voorvoegsel", "geboortedatum",
        "adres", "straat", "huisnummer", "postcode", "woonplaats", "telefoon", "email",
        "persoon", "toeslagpartner",
    }
)
REDACTED = "[persoonsgegeven geweigerd]"
_KEY_PARTS = re.compile(r"[^0-9a-z]+")
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+\.[A-Za-z]{2,}")


def _is_personal_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return lowered in PERSONAL_DATA_KEYS or any(
        part in PERSONAL_DATA_KEYS for part in _KEY_PARTS.split(lowered)
    )


def _scrub_text(text: str) -> str:
    text = BSN_IN_TEXT.sub(lambda m: REDACTED if is_valid_bsn(m.group()) else m.group(), text)
    return _EMAIL_IN_TEXT.sub(REDACTED, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_personal_key(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(v) for v in value]
    return value


def refuse_personal_data(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: personal-data keys are replaced, BSNs and e-mail addresses in text too."""
    return {k: REDACTED if _is_personal_key(k) else _scrub(v) for k, v in event_dict.items()}


def _renderer(settings: Settings) -> Any:
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    return structlog.processors.JSONRenderer()


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        # Last before rendering, so nothing added above can carry personal data past it.
        refuse_personal_data,
    ]


def configure_logging(settings: Settings | None = None) -> None:
    """Route structlog and the stdlib loggers (faust, aiokafka, kafka-python) through one chain."""
    settings = settings or get_settings()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(settings)],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[*shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
