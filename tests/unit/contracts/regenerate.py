"""Write the generated contract files. Run from the repo root with the venv's python:

  python tests/unit/contracts/regenerate.py routed          # schemas/avro/gerouteerde_*.avsc
  python tests/unit/contracts/regenerate.py release TYPE    # copy TYPE's current schema to released/TYPE/<n+1>.avsc
  python tests/unit/contracts/regenerate.py vectors         # vectors/*.hex from vectors/*.json (new vectors only)
  python tests/unit/contracts/regenerate.py vectors --force # rewrite every .hex (a deliberate wire change)

The core stays pure: it renders, this script writes.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from herstelbus.core.contracts import INPUT_TYPES, ROUTED_TYPES, encode, json_to_record, parse_json_event
from herstelbus.core.contracts.catalogue import load_catalogue
from herstelbus.core.contracts.pii import render_schema, routed_schema
from herstelbus.core.contracts.schemas import avro_dir, load_json

VECTORS = Path(__file__).resolve().parent / "vectors"
# Vectors are validated at this instant, so they stay valid as the real clock moves on.
VECTOR_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def routed() -> None:
    for source, target in ROUTED_TYPES.items():
        path = avro_dir() / f"{target}.avsc"
        path.write_text(render_schema(routed_schema(load_json(avro_dir() / f"{source}.avsc"))), encoding="utf-8")
        print("wrote", path)


def release(record_type: str) -> None:
    current = avro_dir() / f"{record_type}.avsc"
    folder = avro_dir() / "released" / record_type
    folder.mkdir(parents=True, exist_ok=True)
    versions = sorted(int(p.stem) for p in folder.glob("*.avsc") if p.stem.isdigit())
    if versions and load_json(folder / f"{versions[-1]}.avsc") == load_json(current):
        print("already released as", versions[-1])
        return
    path = folder / f"{(versions[-1] if versions else 0) + 1}.avsc"
    path.write_bytes(current.read_bytes())
    print("wrote", path)


def vector_record(obj: dict) -> tuple[str, dict]:
    record_type = obj["type"]
    if record_type in INPUT_TYPES:
        return parse_json_event(obj, now=VECTOR_NOW)
    body = {k: v for k, v in obj.items() if k != "type"}
    return record_type, json_to_record(record_type, body, now=VECTOR_NOW)


def vectors(force: bool) -> None:
    load_catalogue(avro_dir())  # fail early on a broken schema
    for path in sorted(VECTORS.glob("*.json")):
        out = path.with_suffix(".hex")
        if out.exists() and not force:
            continue
        record_type, record = vector_record(json.loads(path.read_text(encoding="utf-8")))
        out.write_text(encode(record_type, record).hex() + "\n", encoding="ascii")
        print("wrote", out)


if __name__ == "__main__":
    cmd = sys.argv[1:] or ["help"]
    if cmd[0] == "routed":
        routed()
    elif cmd[0] == "release" and len(cmd) == 2:
        release(cmd[1])
    elif cmd[0] == "vectors":
        vectors(force="--force" in cmd)
    else:
        print(__doc__)
        sys.exit(2)
