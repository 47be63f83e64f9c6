"""Reliability scenarios (issue 10). Fixtures come from tests/conftest.py (the real broker)."""

from __future__ import annotations

from tests.reliability import figures


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 - pytest's hook signature
    path = figures.write_results()
    if path is not None:
        print(f"\n[reliability] figures written to {path}")
