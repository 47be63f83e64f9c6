"""A background thread that reads the ops topics from the start and keeps the dashboard's counts.

Reading Kafka per page request would be far too slow, so one kafka-python consumer (no group, no
commits: every dashboard process reads everything itself) feeds ``Overzicht`` and the pages read
snapshots. It is "bijgewerkt" once it reached the end offsets seen at assignment; topics created
later are picked up within ``HERKIJK_S``. After a broker error it reconnects and reads on from its
own positions.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from herstelbus.kafkaclient import security
from herstelbus.core import contracts
from herstelbus.core.ops.dashboard import Momentopname, Overzicht
from herstelbus.core.topology import AUDIT, DEADLETTER, STATUS, UNROUTABLE
from herstelbus.logs import get_logger

TOPICS = (STATUS, DEADLETTER, UNROUTABLE, AUDIT)
HERKIJK_S = 10.0  # look for new topics / partitions this often
OPNIEUW_S = 5.0  # wait after a broker error

log = get_logger(__name__)


class OpsLezer(threading.Thread):
    def __init__(self, bootstrap: str, overzicht: Overzicht) -> None:
        super().__init__(name="herstelbus-dashboard-lezer", daemon=True)
        self.bootstrap = bootstrap
        self._overzicht = overzicht
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._posities: dict[TopicPartition, int] = {}
        self._doel: dict[TopicPartition, int] = {}  # end offsets at assignment: "caught up" once reached
        self.bijgewerkt_op: datetime | None = None
        self.fout: str | None = None

    def momentopname(self) -> Momentopname:
        with self._lock:
            return self._overzicht.momentopname()

    def toestand(self) -> dict[str, Any]:
        return {"bijgewerkt": self.bijgewerkt_op is not None,
                "bijgewerkt_op": self.bijgewerkt_op.isoformat(timespec="seconds") if self.bijgewerkt_op else None,
                "fout": self.fout}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._lees()
            except Exception as exc:  # broker away, metadata errors: report, wait, read on
                self.fout = type(exc).__name__
                log.warning("dashboard.kafka_fout", fout=self.fout)
                self._stop.wait(OPNIEUW_S)

    def _lees(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 client_id="herstelbus-dashboard", **security())
        try:
            herkeken = 0.0
            while not self._stop.is_set():
                if time.monotonic() - herkeken > HERKIJK_S:
                    self._wijs_toe(consumer)
                    herkeken = time.monotonic()
                batch = consumer.poll(timeout_ms=500, max_records=5000)
                with self._lock:
                    for tp, messages in batch.items():
                        for m in messages:
                            self._verwerk(tp.topic, m.value)
                            self._posities[tp] = m.offset + 1
                self.fout = None
                if self.bijgewerkt_op is None and all(consumer.position(tp) >= end for tp, end in self._doel.items()):
                    self.bijgewerkt_op = datetime.now(timezone.utc)
                    log.info("dashboard.bijgewerkt", partities=len(self._doel))
        finally:
            consumer.close()

    def _wijs_toe(self, consumer: KafkaConsumer) -> None:
        tps = {TopicPartition(t, p) for t in TOPICS for p in consumer.partitions_for_topic(t)}
        if tps == set(consumer.assignment()):
            return
        consumer.assign(sorted(tps))
        for tp in tps:
            if tp in self._posities:
                consumer.seek(tp, self._posities[tp])
            else:
                consumer.seek_to_beginning(tp)
        for tp, end in consumer.end_offsets(sorted(tps - set(self._doel))).items():
            self._doel[tp] = end

    def _verwerk(self, topic: str, value: bytes | None) -> None:
        try:
            record_type, record = contracts.decode(value or b"")
        except contracts.ContractError:
            self._overzicht.onleesbaar(topic)
            return
        self._overzicht.verwerk(topic, record_type, record)
