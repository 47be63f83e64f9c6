"""The privacy core is pure: importing it pulls in no Kafka, HTTP or database client."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("kafka", "aiokafka", "faust", "http", "urllib3", "requests", "aiohttp", "httpx", "sqlite3", "sqlalchemy", "psycopg", "socket")


def test_import_pulls_in_no_io_clients() -> None:
    code = (
        "import sys, herstelbus.core.privacy as p;"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert not [m for m in out if m in FORBIDDEN]
