"""What the benchmarks share: their broker, work dir, /proc readings and results file.

Not a benchmark itself (``make bench`` skips ``bench/_*.py``). The scripts are run as
``python bench/<name>.py``, so ``bench/`` is on ``sys.path`` and they ``import _kit``. Like the
scripts, this imports herstelbus only where it is used.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LOCAL_BROKER = "herstelbus LocalBroker (pinned Apache Kafka, KRaft, one node)"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the broker ----------------------------------------------------------------------------------------
def external_bootstrap() -> str:
    """The broker ``HERSTELBUS_BOOTSTRAP_SERVERS`` names; empty when the bench starts its own."""
    from herstelbus.settings import Settings

    return Settings().bootstrap_servers


@contextmanager
def bench_broker(name: str, wipes: str, reset_allowed: bool) -> Iterator[str]:
    """The broker a bench runs on, as its bootstrap string.

    With ``HERSTELBUS_BOOTSTRAP_SERVERS`` set: that broker, but only when ``reset_allowed``
    (``--reset-topics-on-external-broker``), because the bench deletes and recreates ``wipes`` there.
    Otherwise a ``LocalBroker`` of its own (pinned jars, free ports unless ``HERSTELBUS_KAFKA_PORT``
    is set) in a temporary dir, or in ``$HERSTELBUS_DATA_DIR/bench-<name>`` when that is set (a
    broker a crashed run left there is stopped and its data removed first); stopped and its data
    removed when the block ends, however it ends. From the start of the block on, SIGTERM raises
    KeyboardInterrupt, as Ctrl-C does, so the clean-up also runs when the bench is killed.
    """
    from herstelbus.devkafka import LocalBroker
    from herstelbus.settings import Settings

    base = Settings()
    if base.bootstrap_servers:
        if not reset_allowed:
            raise SystemExit(f"HERSTELBUS_BOOTSTRAP_SERVERS={base.bootstrap_servers}: this bench deletes and recreates "
                             f"{wipes} there. Pass --reset-topics-on-external-broker if that broker is yours to wipe, "
                             "or unset the variable to let the bench start its own broker.")
        _sigterm_as_keyboard_interrupt()
        yield base.bootstrap_servers
        return

    in_data_dir = "HERSTELBUS_DATA_DIR" in os.environ
    if in_data_dir:
        own_dir = (base.data_dir / f"bench-{name}").resolve()
    else:
        own_dir = Path(tempfile.mkdtemp(prefix=f"herstelbus-bench-{name}-"))
    ports = {} if "HERSTELBUS_KAFKA_PORT" in os.environ else {
        "kafka_port": free_port(), "kafka_controller_port": free_port(), "kafka_sasl_port": free_port()}
    settings = Settings(data_dir=own_dir, cache_dir=base.cache_dir.resolve(), **ports)
    broker = LocalBroker(settings)
    broker.down()  # a broker a crashed run of this bench left in its own dir
    shutil.rmtree(settings.kafka_dir, ignore_errors=True)
    t0 = time.monotonic()
    bootstrap = broker.up().bootstrap
    print(f"# broker started on {bootstrap} in {time.monotonic() - t0:.1f}s (data in {settings.kafka_dir})")
    _sigterm_as_keyboard_interrupt()
    try:
        yield bootstrap
    finally:
        broker.down()
        shutil.rmtree(settings.kafka_dir if in_data_dir else own_dir, ignore_errors=True)


def _sigterm_as_keyboard_interrupt() -> None:
    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def delete_topics(admin, names: set[str]) -> None:
    """Delete those of ``names`` that exist (``admin``: a ``KafkaAdminClient``) and wait until they are gone."""
    present = names & set(admin.list_topics())
    if not present:
        return
    admin.delete_topics(sorted(present), timeout_ms=30_000)
    deadline = time.monotonic() + 60
    while present & set(admin.list_topics()):
        if time.monotonic() > deadline:
            raise SystemExit("topics were not deleted within 60 s")
        time.sleep(0.2)


# -- the work dir ---------------------------------------------------------------------------------------
@contextmanager
def work_dir(keep: bool, what: str) -> Iterator[Path]:
    """A fresh temporary dir for logs and state; removed at the end unless ``keep`` (then its path is printed)."""
    work = Path(tempfile.mkdtemp(prefix="herstelbus-bench-work-"))
    try:
        yield work
    finally:
        if keep:
            print(f"# {what} kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- /proc ----------------------------------------------------------------------------------------------
def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all its threads) in seconds; OSError when it has gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """A process' peak resident set (VmHWM) in MB; OSError when it has gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class ProcMonitor(threading.Thread):
    """Samples a process' CPU ticks (all threads) every ``every`` seconds, with wall-clock time."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (time.time(), cpu seconds)
        self._peak: float | None = None  # VmHWM only grows: the last reading is the peak so far
        self._halt = threading.Event()

    def cpu(self) -> float | None:
        try:
            return cpu_seconds(self.pid)
        except OSError:
            return None

    def peak_rss_mb(self) -> float | None:
        """Now, or as last sampled when the process has ended."""
        try:
            self._peak = peak_rss_mb(self.pid) or self._peak
        except OSError:
            pass
        return self._peak

    def run(self) -> None:
        while not self._halt.is_set():
            c = self.cpu()
            if c is not None:
                self.samples.append((time.time(), c))
                self.peak_rss_mb()
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def cpu_at(self, t: float) -> float:
        """CPU seconds used by time ``t``, interpolated between samples."""
        s = self.samples
        if not s:
            return float("nan")
        if t <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
        return s[-1][1]


# -- results ----------------------------------------------------------------------------------------------
def run_meta(started_at: float, load_at_start: tuple[float, float, float], bootstrap: str,
             libraries: dict[str, str], **workload) -> dict:
    """The ``meta`` of a results file: when, where (machine, Python, ``libraries``' versions, broker),
    the ``workload`` options, the load average at the start (given) and now, and the total time."""
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                   f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, {platform.platform()}",
        "python": platform.python_version(), **libraries,
        "broker": bootstrap if external_bootstrap() else LOCAL_BROKER,
        **workload,
        "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
        "total_seconds": round(time.monotonic() - started_at, 1),
    }


def write_results(stem: str, results: dict) -> Path:
    """``bench/results/<stem>-<today>.json``; ``results["meta"]`` is from ``run_meta``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{stem}-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"# written {out.relative_to(REPO)} (total {results['meta']['total_seconds']:.0f}s)")
    return out


def py_spy(out: Path, rate: int = 100) -> list[str]:
    """The argv prefix that runs a command under py-spy (the ``bench`` extra), sampling ``rate``/s into
    ``out`` as folded stacks, idle (waiting) frames included: a process that is not CPU-bound shows
    where it waits."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        raise SystemExit(f"py-spy is not installed next to {sys.executable}: make bench installs it (.[bench])")
    return [str(exe), "record", "--idle", "--threads", "--rate", str(rate), "--format", "raw", "--output", str(out),
            "--"]


def folded_summary(path: Path, top: int = 12) -> dict:
    """Where the samples of a py-spy folded-stacks file fall: the ``top`` leaf frames by share
    ("own time", waiting included), printed and returned."""
    own: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread (")), "-")
        key = f"{thread} {frames[-1]}"
        own[key] = own.get(key, 0) + int(count)
        threads[thread] = threads.get(thread, 0) + int(count)
        total += int(count)
    rows = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    print(f"profile ({total:,} samples over {len(threads)} threads, py-spy --idle --threads): own share by frame")
    for frame, n in rows:
        print(f"  {n / max(total, 1):>6.1%}  {frame}")
    return {"samples": total, "threads": threads,
            "top_by_own_share": [{"frame": f, "share": round(n / max(total, 1), 3)} for f, n in rows]}
