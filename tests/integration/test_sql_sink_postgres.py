"""The sql sink on PostgreSQL: the SQLite unit checks, on a throwaway database (skipped without one)."""

from __future__ import annotations

from tests.integration.postgres import db_url, pg_admin_url  # noqa: F401  (fixtures)
from tests.unit.gemeente.test_gemeente_sqlsink import check_gaps_across_restarts, check_idempotent_and_durable


def test_idempotent_by_event_id_within_and_across_restarts(db_url: str) -> None:  # noqa: F811
    check_idempotent_and_durable(db_url)


def test_sequence_gap_is_reported_across_restarts(db_url: str) -> None:  # noqa: F811
    check_gaps_across_restarts(db_url)
