"""`herstelbus keys relay`: the key store's audit rows (erasures, key registrations, tokens, the
forget notices gemeenten confirmed) forwarded to ``herstel.audit.v1``, where the dashboard and
every other ops reader see them next to replay, reroute and redrive.

An outbox relay: a row is marked relayed only after the broker acknowledged it, so a relay that
stops half way sends that row again (at least once; readers deduplicate by ``audit_id``). It runs
as the key store's owner (it reads ``audit_log``, which the API and router roles cannot).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from herstelbus.core import contracts
from herstelbus.logs import get_logger

from . import policy
from .store import KeyAdmin

BATCH = 500
log = get_logger("herstelbus.keystore.relay")

Send = Callable[[Sequence[dict[str, Any]]], None]  # sends and waits for the broker's acks, or raises


@dataclass(frozen=True)
class Doorgestuurd:
    sent: int
    refused: tuple[str, ...]  # audit ids the audit contract refuses: kept in the key store, logged


def relay_once(admin: KeyAdmin, send: Send, *, batch: int = BATCH) -> Doorgestuurd:
    """Forward every audit row not yet relayed, ``batch`` at a time; raises when the broker or the
    key store fails (nothing is marked then)."""
    sent, refused = 0, []
    while True:
        rows = [r for r in admin.unrelayed_audit_records(batch + len(refused)) if r.audit_id not in refused]
        if not rows:
            return Doorgestuurd(sent, tuple(refused))
        messages = []
        for row in rows:
            message = policy.audit_message(audit_id=row.audit_id, at=row.at, action=row.action, actor=row.actor,
                                           subject=row.subject, gemeentecode=row.gemeentecode, detail=row.detail)
            if errors := contracts.validate("audit", message):
                log.error("audit_row_refused", audit_id=row.audit_id, reason=errors[0].reason, path=errors[0].path)
                refused.append(row.audit_id)
            else:
                messages.append(message)
        if messages:
            send(messages)
            admin.mark_audit_relayed([m["audit_id"] for m in messages])
            sent += len(messages)
            log.info("audit_relayed", count=len(messages))


def run(admin: KeyAdmin, send: Send, *, interval_s: float, stop: threading.Event | None = None,
        retry: tuple[type[BaseException], ...] = ()) -> None:
    """Relay every ``interval_s`` until SIGTERM/SIGINT (or ``stop``). A failure in ``retry`` (the
    broker or the key store away) is logged and tried again next interval: nothing is lost, the
    rows wait in the key store."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("audit_relay_started", interval_s=interval_s)
    while not stop.is_set():
        try:
            result = relay_once(admin, send)
        except retry as exc:
            log.warning("audit_relay_waiting", error=type(exc).__name__, retry_in_s=interval_s)
        else:
            if result.refused:
                log.error("audit_rows_kept", refused=len(result.refused))
        stop.wait(interval_s)
    log.info("audit_relay_stopped")


__all__ = ["Doorgestuurd", "relay_once", "run"]
