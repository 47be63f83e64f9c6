"""herstelbus supervise: a worker that ends itself with 70 is started again; anything else ends
the supervision with that code; SIGTERM reaches the worker. Real child processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from herstelbus.processes import supervise

ONCE_70 = ("import pathlib, sys; m = pathlib.Path(sys.argv[1]); n = int(m.read_text()) if m.exists() else 0; "
           "m.write_text(str(n + 1)); sys.exit(70 if n == 0 else 0)")


def test_a_worker_that_exits_70_is_started_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert supervise([sys.executable, "-c", ONCE_70, str(runs)], pause_s=0) == 0
    assert runs.read_text() == "2"


def test_another_exit_code_ends_the_supervision() -> None:
    assert supervise([sys.executable, "-c", "import sys; sys.exit(3)"], pause_s=0) == 3


def test_sigterm_reaches_the_worker_and_ends_the_supervision() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "supervise", "--", sys.executable, "-c",
                             "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
                             "print('ready', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0 and time.monotonic() - started < 20


def test_a_killed_supervisor_takes_its_worker_along(tmp_path: Path) -> None:
    """SIGKILL can't be passed on: the worker gets SIGTERM from the kernel (PR_SET_PDEATHSIG) rather
    than run on as an orphan holding its partitions."""
    marker = tmp_path / "worker.pid"
    proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "supervise", "--", sys.executable, "-c",
                             f"import os, pathlib, time; pathlib.Path({str(marker)!r}).write_text(str(os.getpid())); "
                             "time.sleep(60)"])
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    worker = int(marker.read_text())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and "zombie" not in _state(worker):
        assert time.monotonic() < deadline, "the worker outlived its supervisor"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_a_worker_stopped_while_it_is_still_starting_exits_0() -> None:
    """Before faust or supervise handle signals (the imports take most of a second): nothing was
    read, so the stop is as clean as a drained worker's."""
    proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "router"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.15)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_a_worker_ended_by_the_stop_it_was_passed_ends_the_supervision_with_0() -> None:
    """A worker still starting (the default SIGTERM action: killed by it) was told to stop by the
    supervisor: that is a stop, not a failure (it read nothing)."""
    proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "supervise", "--", sys.executable, "-c",
                             "import time; print('ready', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
