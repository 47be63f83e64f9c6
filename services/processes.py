"""Child processes herstelbus starts (workers, the key store in tests): stopped politely, then
firmly; and a minimal supervisor for where no systemd or Kubernetes restarts the workers."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from herstelbus.errors import EXIT_RESTART


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGTERM (a faust worker drains and commits), SIGKILL after ``timeout_s``; the exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


_PR_SET_PDEATHSIG = 1


def _ends_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the supervisor dies, even by SIGKILL, so a
    worker never runs on as an orphan holding its partitions (it drains and commits as on a stop)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(argv: Sequence[str], *, restart_on: frozenset[int] = frozenset({EXIT_RESTART}),
              pause_s: float = 1.0) -> int:
    """Run ``argv`` and start it again whenever it ends with a code in ``restart_on`` (a worker
    that ended itself rather than lose or hold back a record: it reads on from the committed
    offsets). SIGTERM/SIGINT are passed on and end the supervision; any other exit code is
    returned. Restarts are announced on stderr (no personal data: the code and a count)."""
    stopping = False
    child: subprocess.Popen | None = None

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    restarts = 0
    try:
        while True:
            child = subprocess.Popen(list(argv), preexec_fn=_ends_with_parent)
            if stopping:  # the signal came while it was being started: it never saw it
                child.terminate()
            code = child.wait()
            if stopping and code in (-signal.SIGTERM, -signal.SIGINT):
                return 0  # the stop came before the worker handled signals (still starting): nothing read
            if stopping or code not in restart_on:
                return code
            restarts += 1
            print(f"herstelbus supervise: worker exited {code}; restart {restarts}", file=sys.stderr, flush=True)
            time.sleep(pause_s)
            if stopping:  # told to stop while waiting to restart
                return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
