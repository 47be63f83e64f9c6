"""``python -m herstelbus``.

A worker told to stop while it is still starting (importing, before faust or the supervisor put
their own signal handling in place) would otherwise die of the signal. It has read nothing yet, so
stopping is clean: exit 0, as a drained worker does. Only for the long-running workers: a tool
stopped half-way must not report success.
"""

import signal
import sys

_WORKERS = frozenset({"router", "acks", "supervise"})


def _stopped_while_starting(_signum: int, _frame: object) -> None:
    sys.exit(0)


if len(sys.argv) > 1 and sys.argv[1] in _WORKERS:
    signal.signal(signal.SIGTERM, _stopped_while_starting)

from herstelbus.cli import main  # noqa: E402 - after the handler: importing is the slow part

main()
