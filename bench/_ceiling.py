"""The broker's own ceiling and a kafka-python pass-through floor, for the benches (issue 9).

**Ceiling**: Kafka's ``ProducerPerformance`` and ``ConsumerPerformance`` from the pinned jars (the
ones the broker runs from), records of the bench events' mean size, acks=all like every herstelbus
producer. A consume→produce pipeline cannot beat either, so the ceiling is the lower of the two.

**kafka-python floor**: ``--passthrough-kafka-python`` worker: one kafka-python consumer in a group
on the ingest topics, every record sent unchanged to one output topic (acks=all), the producer
flushed before each offset commit: the same at-least-once contract as the router, with none of its
work. Measured by the router bench exactly as the faust floor.
"""

from __future__ import annotations

import re
import subprocess

_PRODUCED = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                       r"([\d.]+) ms max latency")


def _java_and_classpath() -> tuple[str, str]:
    from herstelbus.devkafka.config import deploy_dir, pinned_kafka_version
    from herstelbus.devkafka.toolchain import ensure_jars, java_executable
    from herstelbus.settings import Settings

    settings = Settings()
    folder = deploy_dir(settings)
    libs = ensure_jars(folder / "pom.xml", settings.cache_dir.resolve(), pinned_kafka_version(folder / "pom.xml"))
    return java_executable(), f"{libs}/*"


def _tool(java: str, classpath: str, main: str, *args: str, timeout_s: float) -> str:
    cmd = [java, "-Xmx512m", "-cp", classpath, main, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{main.rsplit('.', 1)[-1]} failed (exit {done.returncode}):\n"
                         + "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:]))
    return done.stdout


def ceiling(bootstrap: str, topic: str, records: int, record_size: int, timeout_s: float = 300) -> dict:
    """Producer and consumer records/s of Kafka's own tools on ``topic`` (fresh, herstelbus' partitions)."""
    java, classpath = _java_and_classpath()
    produced = _tool(java, classpath, "org.apache.kafka.tools.ProducerPerformance",
                     "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
                     "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
                     timeout_s=timeout_s)
    last = _PRODUCED.findall(produced)
    if not last:
        raise SystemExit(f"ProducerPerformance printed no summary:\n{produced[-800:]}")
    sent, producer_rate, mb_s, avg_ms, max_ms = last[-1]
    consumed = _tool(java, classpath, "org.apache.kafka.tools.ConsumerPerformance",
                     "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
                     "--timeout", str(int(timeout_s * 1000)), timeout_s=timeout_s)
    consumer_rate = _consumer_rate(consumed)
    return {"records": int(sent), "record_size": record_size, "producer_events_per_s": float(producer_rate),
            "producer_mb_per_s": float(mb_s), "producer_avg_latency_ms": float(avg_ms),
            "producer_max_latency_ms": float(max_ms), "consumer_events_per_s": consumer_rate,
            "events_per_s": min(float(producer_rate), consumer_rate)}


def ceiling_on_new_topic(bootstrap: str, records: int, record_size: int, partitions: int = 1,
                         timeout_s: float = 300) -> dict:
    """``ceiling`` on a topic of its own, made for it (for the benches that have no topic to spare)."""
    import os
    import time

    from herstelbus.core.topology import TopicSpec
    from herstelbus.topics import provision

    topic = f"bench.ceiling-{os.getpid()}-{time.monotonic_ns()}.v1"
    provision(bootstrap, [TopicSpec(topic, partitions)], 1)
    run = ceiling(bootstrap, topic, records, record_size, timeout_s)
    print(f"  ceiling      {run['records']:>9,} records of {record_size} bytes: producer "
          f"{run['producer_events_per_s']:>9,.0f}/s, consumer {run['consumer_events_per_s']:>9,.0f}/s", flush=True)
    return run


def _consumer_rate(output: str) -> float:
    """ConsumerPerformance's summary line: a CSV whose header names ``nMsg.sec``."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if "nMsg.sec" in line), None)
    if header is None or header + 1 >= len(lines):
        raise SystemExit(f"ConsumerPerformance printed no summary:\n{output[-800:]}")
    names = [n.strip() for n in lines[header].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    return float(values[names.index("nMsg.sec")])


def passthrough_kafka_python(bootstrap: str, group: str, sink: str, topics: list[str]) -> None:
    """The kafka-python floor worker (runs until SIGTERM)."""
    import signal

    from kafka import KafkaConsumer, KafkaProducer

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=1000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    try:
        while not stopping:
            polled = consumer.poll(timeout_ms=200)
            if not polled:
                continue
            for records in polled.values():
                for m in records:
                    producer.send(sink, key=m.key, value=m.value, headers=m.headers)
            producer.flush()  # every output acknowledged before the offsets move past its input
            consumer.commit()
    finally:
        producer.close()
        consumer.close(autocommit=False)


__all__ = ["ceiling", "passthrough_kafka_python"]

