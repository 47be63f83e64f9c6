"""Shared helpers for the contract tests (imported as a top-level module by pytest's rootdir-less import mode)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"
# Vectors and fixtures are judged at a fixed instant so they never age into "implausible".
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def load_vector(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def vector_names() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("*.json"))



def valid(name: str) -> dict:
    """A fresh, valid JSON-form event from the golden vectors (``type`` included)."""
    return load_vector(name)


def reasons(errors) -> set[tuple[str, str]]:
    return {(e.reason, e.path) for e in errors}
