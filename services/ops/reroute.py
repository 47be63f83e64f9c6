"""``herstelbus reroute --from unroutable|ingest``: the Kafka side of ``herstelbus.core.ops.reroute``.

``--from unroutable`` reads herstel.unroutable.v1 and opens the chosen originals with the ops
private key; ``--from ingest`` reads the ingest topics (of each record its position, timestamp and
``ce_id`` first, as reconcile does; then the whole record only for those sent again: the plaintext
stays in memory). Both read herstel.audit.v1 (copies earlier runs sent) and uht.status.v1 (what was
routed since, and which ingest records are UNROUTABLE). The copies and their audit records are
written as a redrive's (``herstelbus.ops.common.send_again``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from herstelbus.core.ops import deadletter as d
from herstelbus.core.ops import reroute as rr
from herstelbus.core.topology import INGEST, STATUS, UNROUTABLE
from herstelbus.ops.common import (
    LEES_S, Zending, actor_of, ms, quiet_logging, read_kopieen, read_positions, reading, ref_of, since_option,
)
from herstelbus.ops.deadletter import (
    Run, actor_option, check_actor, echo_run, finish, reason_option, send_letters, timeout_option,
)
from herstelbus.ops.reconcile import read_ingest, read_receipts
from herstelbus.settings import get_settings


def reroute_unroutable(bootstrap: str, *, since: datetime | None = None, reden: str | None = None,
                       dry_run: bool = False, actor: str, timeout_s: float = LEES_S) -> Run:
    selectie = d.Selectie(reden=reden, since_ms=ms(since))
    return send_letters(bootstrap, d.REROUTE, UNROUTABLE, lambda letters, st: rr.kies_vastgehouden(letters, selectie, st),
                        dry_run=dry_run, actor=actor, timeout_s=timeout_s)


def reroute_ingest(bootstrap: str, *, since: datetime | None = None, reden: str | None = None,
                   dry_run: bool = False, actor: str, timeout_s: float = LEES_S) -> Run:
    check_actor(d.REROUTE, actor)
    with reading(bootstrap, "herstelbus-reroute", timeout_s) as (c, deadline):
        kopieen = read_kopieen(c, deadline)
        logs, records = read_ingest(c, INGEST, ms(since), deadline)
        receipts, _, _ = read_receipts(c, STATUS, deadline)  # after the ingest topics: none looks lost
        st = d.stand(receipts, kopieen, {(tp.topic, tp.partition): start for tp, (start, _, _) in logs.items()})
        besluiten = rr.kies_ingest(records, receipts, st, reden=reden)
        found: dict[Any, Any] = {}
        read_positions(c, [b.kandidaat.bron for b in besluiten if b.opnieuw],
                       lambda m: found.__setitem__(ref_of(m), m), deadline)
    besluiten = rr.zonder(besluiten, (b.kandidaat.herkomst for b in besluiten if b.kandidaat.bron in found))
    zendingen = [Zending(b, m.key, m.value, d.kopie_headers(d.REROUTE, m.headers or [], b.kandidaat.herkomst))
                 for b in besluiten if b.opnieuw for m in [found[b.kandidaat.bron]]]
    return finish(bootstrap, d.REROUTE, len(records), besluiten, zendingen, dry_run=dry_run, actor=actor, topic=None)


@click.command("reroute")
@click.option("--from", "bron", required=True, type=click.Choice(rr.BRONNEN),
              help="unroutable: the held events on herstel.unroutable.v1 (needs HERSTELBUS_OPS_PRIVATE_KEY_FILE); "
                   "ingest: ingest records (24 h retention) whose receipt is UNROUTABLE.")
@since_option("Only what was held (unroutable) or published (ingest) at/after TIME (ISO 8601; without an "
              "offset: UTC).")
@reason_option
@click.option("--dry-run", is_flag=True, help="Decide and count, send nothing, write no audit record.")
@actor_option
@timeout_option
def reroute(bron: str, since: datetime | None, reason: str | None, dry_run: bool, actor: str | None,
            timeout: float) -> None:
    """Send held events through the routing rules again, after the reference data or a gemeente's
    key was corrected: each original goes back to its ingest topic and partition (same key, value
    and headers, plus herstel_reroute) and gets a new receipt. Never an event routed since, never
    one whose earlier copy still waits for its receipt; each event id once. Audited on
    herstel.audit.v1."""
    quiet_logging()
    run = (reroute_unroutable if bron == "unroutable" else reroute_ingest)(
        get_settings().bootstrap, since=since, reden=reason, dry_run=dry_run, actor=actor_of(actor),
        timeout_s=timeout)
    echo_run(d.REROUTE, run, dry_run)


__all__ = ["reroute", "reroute_ingest", "reroute_unroutable"]
