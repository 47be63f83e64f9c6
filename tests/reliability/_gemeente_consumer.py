"""``herstelbus gemeente consume`` for scenario 4, as a process the test kills: the command's own
pieces (open_sink, Bevestiger, GemeenteConsumer.from_env, verwerking.consume: sink, acks, commit),
with two settings the command does not expose, passed through the SDK's consumer config:

- a small poll (``--batch``): many sink-write/offset-commit windows per run to kill into;
- static group membership (``group_instance_id``): a restart after SIGKILL takes its partitions
  back at once. The command's dynamic member would wait for the killed member's session to expire
  (kafka-python's default 45 s) before anything is read again.

    python -m tests.reliability._gemeente_consumer GM --key-dir D --sink sql:URL --group-id G [--once]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from herstelbus.connectors.gemeente.bevestiging import Bevestiger
from herstelbus.connectors.gemeente.sdk import GemeenteConsumer
from herstelbus.connectors.gemeente.sinks import open_sink
from herstelbus.connectors.gemeente.verwerking import consume
from herstelbus.logs import configure_logging
from herstelbus.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("gemeentecode")
    parser.add_argument("--key-dir", type=Path, required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    configure_logging()
    sink = open_sink(args.sink, args.gemeentecode)
    bootstrap = get_settings().bootstrap
    bevestiger = Bevestiger(bootstrap, args.gemeentecode, oin=os.environ.get("HERSTELBUS_GEMEENTE_OIN"))
    try:
        with GemeenteConsumer.from_env(args.gemeentecode, key_dir=args.key_dir, bootstrap=bootstrap,
                                       group_id=args.group_id, max_records=args.batch,
                                       group_instance_id=f"{args.group_id}-1", session_timeout_ms=6000,
                                       heartbeat_interval_ms=1000) as consumer:
            samenvatting = consume(consumer, sink, bevestiger, once=args.once)
    finally:
        sink.close()
        bevestiger.close()
    print(samenvatting.regel(), flush=True)


if __name__ == "__main__":
    main()
