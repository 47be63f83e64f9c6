"""Child processes herstelbus starts (workers, the key store in tests): stopped politely, then firmly."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGTERM (a faust worker drains and commits), SIGKILL after ``timeout_s``; the exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
