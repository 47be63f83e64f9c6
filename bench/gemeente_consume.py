"""Gemeente consume + decrypt + jsonl sink, events/s per process, on the real broker (issue 6).

    .venv/bin/python bench/gemeente_consume.py [--events 20000] [--repeats 3] [--warmups 1] [--no-profile]

The SDK is only ever reported as a ratio to a plain kafka-python consumer measured beside it, on
the same broker, the same records and in the same run. The broker is one this script starts
(pinned jars, its own data dir and free ports, stopped at the end) unless
``HERSTELBUS_BOOTSTRAP_SERVERS`` names one; then, because gemeente topic names are fixed, the
script deletes and recreates the two it uses there and refuses to do so without
``--reset-topics-on-external-broker``.

Workload: synthetic UHT events (``herstelbus.connectors.uht.synthetic``, seed 1), every gemeente
code in them set to GM0363 (VOW/buitenland keep none and are left out, as are the generator's
11-proef failures and repeated event ids), run through the router's own ``Pipeline`` and
``Sealer`` in this process: exactly the records (value, key, CloudEvents headers) the router
writes to ``gemeente.GM0363.events.v1``, their wrapped keys and key-epoch announcement in a fresh
SQLite key store. The warm-up reads 2,000 such records of GM0599 (seed 2).
The key store API is ``herstelbus keys serve`` on a free port, over that SQLite file.

Scenarios, each a fresh process (this file with ``--worker``) and a fresh consumer group that reads
the whole topic from the start, 500 records per poll (the SDK's batch), offsets committed after
every batch:
  raw    a plain ``KafkaConsumer``: poll, commit. The floor.
  sdk    ``GemeenteConsumer.batches(until_caught_up=True)``: poll, decode, verify the epoch's signed
         announcement, one key-store request per batch, open every record, order; commit.
  jsonl  ``verwerking.consume(consumer, open_sink("jsonl:DIR"), once=True)``: what
         ``herstelbus gemeente consume GM0363 --sink jsonl:DIR --once`` runs (logging configured
         the same way), without click and without --ack.
One round = every scenario once, in that order: --warmups rounds on the warm-up topic, then
--repeats rounds on the measured one; per scenario the median of the repeats.
Throughput: the worker notes wall clock and its process CPU time (all threads) after each batch's
commit; events/s = (N - first batch) / (last note - first note): start-up, group join and the
first fetch are excluded. CPU s/1000 over the same window. Peak RSS = the worker's VmHWM at the
end. CPU ceiling = 1000 / (CPU s per 1000): the rate with a core to itself and no waits, steadier
than events/s on a shared machine. Key store CPU = utime+stime of the ``keys serve`` process over
the whole run, per 1,000 events (it is otherwise idle). Kafka ceiling: one run of Kafka's consumer
tool (``_ceiling``) on the same broker, records of the measured topic's mean size; every rate is
printed with its ratio to raw and to that ceiling. Profile: one more jsonl run under cProfile (not
in the figures).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import _ceiling
import _kit

GOAL_RATE = 10_000
GEMEENTE, WARM_GEMEENTE = "GM0363", "GM0599"  # Amsterdam measured, Rotterdam for the warm-up
WARMUP_EVENTS = 2_000
OIN = "00000001003214345000"
SCENARIOS = ("raw", "sdk", "jsonl")


# -- the worker: one scenario in its own process, one JSON line on stdout ---------------------------
def worker(scenario: str, gm: str, group: str, expected: int, work: Path, profile: Path | None) -> None:
    import logging

    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    from herstelbus.connectors.gemeente.sdk import DEFAULT_BATCH, GemeenteConsumer
    from herstelbus.connectors.gemeente.sinks import open_sink
    from herstelbus.connectors.gemeente.verwerking import consume
    from herstelbus.core.topology import gemeente_events_topic
    from herstelbus.logs import configure_logging
    from herstelbus.settings import get_settings

    configure_logging()  # as the CLI: one batch_verwerkt line per batch goes to stderr
    logging.getLogger("kafka").setLevel(logging.WARNING)
    bootstrap = get_settings().bootstrap
    notes: list[tuple[float, float, int]] = []  # (wall, process CPU, records so far) after each commit
    counts = {"opened": 0, "refused": 0}
    prof = cProfile.Profile() if profile else None

    def note(n: int) -> None:
        notes.append((time.time(), time.process_time(), (notes[-1][2] if notes else 0) + n))

    if scenario == "raw":
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                 auto_offset_reset="earliest", max_poll_records=DEFAULT_BATCH)
        consumer.subscribe([gemeente_events_topic(gm)])
        while not notes or notes[-1][2] < expected:
            polled = consumer.poll(timeout_ms=1000)
            if polled:
                consumer.commit({tp: OffsetAndMetadata(ms[-1].offset + 1, "", -1) for tp, ms in polled.items()})
                note(sum(len(ms) for ms in polled.values()))
        consumer.close(autocommit=False)
    else:
        consumer = GemeenteConsumer.from_env(gm, key_dir=work / "keys" / gm, bootstrap=bootstrap, group_id=group)
        sdk_commit = consumer.commit

        def commit(batch=None) -> None:  # the consume loop's own commit, timed
            sdk_commit(batch)
            counts["opened"] += len(batch.geopend)
            counts["refused"] += len(batch.geweigerd)
            note(len(batch.resultaten))

        consumer.commit = commit
        if prof:
            prof.enable()
        if scenario == "sdk":
            for batch in consumer.batches(until_caught_up=True):
                consumer.commit(batch)
        else:
            sink = open_sink(f"jsonl:{work / 'sink' / group}", gm)
            try:
                consume(consumer, sink, None, once=True)
            finally:
                sink.close()
        if prof:
            prof.disable()
            prof.dump_stats(profile)
        consumer.close()
    (t0, c0, n0), (t1, c1, n1) = notes[0], notes[-1]
    print(json.dumps({"events": n1, "first_batch": n0, "t_first": t0, "t_last": t1,
                      "events_per_s": (n1 - n0) / (t1 - t0), "cpu_s_per_1000": (c1 - c0) / (n1 - n0) * 1000,
                      "peak_rss_mb": _kit.peak_rss_mb(), "batches": len(notes), **counts}))


# -- preparation: keys, key store, the router's records ---------------------------------------------
def routed_records(n: int, gm: str, seed: int, pipeline) -> tuple[list, list]:
    """The first ``n`` records the router writes for ``gm`` from synthetic events whose gemeente
    codes are all ``gm``: ([(key, value, headers)], [WrappedKey])."""
    from herstelbus.connectors.uht.synthetic import generate
    from herstelbus.core import contracts
    from herstelbus.core.routing import KafkaRef

    source = contracts.source_urn(OIN, "uht")
    records, wrapped, seen, memory = [], [], set(), {}
    for i, obj in enumerate(generate(int(n * 1.2) + 100, seed=seed)):
        if obj.get("gemeentecode") is None or obj["event_id"] in seen:
            continue  # VOW / buitenland (unroutable), UHT's repeated events
        obj["gemeentecode"] = gm
        if obj.get("toeslagpartner") and obj["toeslagpartner"].get("gemeentecode"):
            obj["toeslagpartner"] = {**obj["toeslagpartner"], "gemeentecode": gm}
        try:
            record_type, record = contracts.parse_json_event(obj)
        except contracts.InvalidEvent:
            continue  # refused by UHT's publisher (the generator's 11-proef failures)
        seen.add(obj["event_id"])
        topic = f"uht.{record_type}.v1"
        plan = pipeline.plan(KafkaRef(topic, 0, i), record["dossiernummer"].encode(),
                             contracts.encode(record_type, record),
                             contracts.headers_for(record_type, record, source=source),
                             gezien=lambda _: None, betrokken=memory.get)
        memory.update(plan.memory)
        records += [(o.key, o.value, o.headers) for o in plan.outputs if o.gemeentecode == gm]
        wrapped += [k for k in plan.wrapped_keys if k.gemeentecode == gm]
        if len(records) >= n:
            return records[:n], wrapped[:n]
    raise SystemExit(f"the generator gave fewer than {n} records for {gm}")


def prepare(bootstrap: str, work: Path, n: int) -> dict[str, str]:
    """Keys, key store and topics with the sealed records; returns the workers' environment."""
    from kafka import KafkaProducer

    from herstelbus.core import contracts
    from herstelbus.core.privacy import (
        GemeenteKey, PseudonymSecret, generate_gemeente_key, generate_signing_key, private_key_to_pem,
        public_key_to_pem,
    )
    from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
    from herstelbus.router.pipeline import Pipeline
    from herstelbus.router.sealer import Sealer

    signing = generate_signing_key()
    (work / "signing.pub.pem").write_bytes(public_key_to_pem(signing.public_key()))
    url = f"sqlite:///{work / 'keystore.sqlite'}"
    store = KeyStore.open(url)
    admin = KeyAdmin(store)
    tokens = {}
    for gm in (GEMEENTE, WARM_GEMEENTE):
        key = generate_gemeente_key()
        (work / "keys" / gm).mkdir(parents=True)
        (work / "keys" / gm / f"{gm}.pem").write_bytes(private_key_to_pem(key))
        admin.register_gemeente_key(GemeenteKey(gm, key.public_key(), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)),
                                    "bench")
        tokens[gm] = admin.issue_token(gm, "bench")
    writer = ExchangeWriter(store)
    pipeline = Pipeline(Sealer(writer, signing), PseudonymSecret.generate(), generate_gemeente_key().public_key(),
                        contracts.source_urn(OIN, "herstelbus"))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    sizes = {}
    for gm, count, seed in ((GEMEENTE, n, 1), (WARM_GEMEENTE, WARMUP_EVENTS, 2)):
        t0 = time.monotonic()
        records, wrapped = routed_records(count, gm, seed, pipeline)
        for i in range(0, len(wrapped), 1000):
            writer.put_wrapped_keys(wrapped[i:i + 1000])
        for key, value, headers in records:
            producer.send(f"gemeente.{gm}.events.v1", key=key, value=value, headers=headers)
        producer.flush()
        sizes[gm] = statistics.mean(len(v) for _, v, _ in records)
        print(f"# {gm}: {len(records):,} records sealed by the router's pipeline and produced "
              f"in {time.monotonic() - t0:.1f}s (mean value {sizes[gm]:.0f} bytes)", flush=True)
    producer.close()
    store.close()
    return {"HERSTELBUS_BOOTSTRAP_SERVERS": bootstrap, "HERSTELBUS_KEYSTORE_URL": url,
            "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE": str(work / "signing.pub.pem"), "HERSTELBUS_LOG_FORMAT": "json",
            "HERSTELBUS_DATA_DIR": str(work / "data"), "BENCH_MEAN_VALUE_BYTES": f"{sizes[GEMEENTE]:.0f}",
            **{f"BENCH_TOKEN_{gm}": tok for gm, tok in tokens.items()}}


def fresh_topics(bootstrap: str) -> None:
    """The two gemeente event topics, empty (deleted first when they exist)."""
    from kafka import KafkaAdminClient

    from herstelbus.core.topology import topic_specs
    from herstelbus.settings import Settings
    from herstelbus.topics import provision

    settings = Settings(bootstrap_servers=bootstrap)
    specs = [s for s in topic_specs([GEMEENTE, WARM_GEMEENTE], settings.topic_policy())
             if s.name.endswith(".events.v1")]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="herstelbus-bench")
    try:
        _kit.delete_topics(admin, {s.name for s in specs})
    finally:
        admin.close()
    provision(bootstrap, specs, settings.replication_factor)


def start_keystore(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _kit.free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "herstelbus", "keys", "serve", "--port", str(port)],
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=_kit.REPO)
    from herstelbus.processes import stop

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/v1/health", timeout=2) as resp:
                    if resp.status == 200:
                        return proc, base
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"keys serve did not answer; log: {log}")
            time.sleep(0.1)
    except BaseException:  # not answering, or SIGTERM/^C while waiting: never leave it running
        stop(proc, timeout_s=10)
        raise


# -- one run ----------------------------------------------------------------------------------------
def run(scenario: str, gm: str, expected: int, rep: int, env: dict, work: Path, keystore: subprocess.Popen,
        timeout: float, profile: Path | None = None) -> dict:
    group = f"bench-{scenario}-{gm}-{os.getpid()}-{time.monotonic_ns()}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", scenario, gm, group, str(expected), str(work)]
    if profile:
        cmd += ["--profile-to", str(profile)]
    ks_cpu = _kit.cpu_seconds(keystore.pid)
    with open(work / f"{group}.log", "w") as log:
        done = subprocess.run(cmd, env={**os.environ, **env, "HERSTELBUS_GEMEENTE_TOKEN": env[f"BENCH_TOKEN_{gm}"]},
                              stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                              timeout=timeout, cwd=_kit.REPO)
    if done.returncode != 0:
        raise SystemExit(f"{scenario} worker exited {done.returncode}; log: {work / f'{group}.log'}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(scenario=scenario, repetition=rep, gemeente=gm,
                  keystore_cpu_s_per_1000=(_kit.cpu_seconds(keystore.pid) - ks_cpu) / expected * 1000
                  if scenario != "raw" else None)
    if result["events"] != expected or result["refused"]:
        raise SystemExit(f"{scenario}: {result['events']} records, {result['refused']} refused; expected "
                         f"{expected} opened; log: {work / f'{group}.log'}")
    if scenario == "jsonl":
        lines = (work / "sink" / group / f"{gm}.jsonl").read_bytes().count(b"\n")
        if lines != expected:
            raise SystemExit(f"jsonl: {lines} lines written, expected {expected}")
    label = {0: "warm-up", -1: "profile"}.get(rep, f"rep {rep}")
    ks = result["keystore_cpu_s_per_1000"]
    print(f"  {scenario:<6} {label:<7} {expected:>6,} events {result['events_per_s']:>9,.0f} events/s  "
          f"cpu {result['cpu_s_per_1000']:.3f} s/1000  rss {result['peak_rss_mb']:.0f} MB"
          + (f"  key store cpu {ks:.3f} s/1000" if ks is not None else ""), flush=True)
    return result


# Where a jsonl run's time goes: cumulative time of the steps of one batch (they nest: CRC32C is
# part of the poll; JSON and fsync are part of the sink). (file name, function) in pstats' terms.
STAGES = (
    ("kafka poll: fetch, unpack records", "kafka/consumer/group.py", "poll"),
    ("  of which CRC32C check (kafka-python)", "kafka/record/util.py", "calc_crc32c"),
    ("decode: CloudEvents headers, Avro, key ref", "gemeente/openen.py", "_decodeer"),
    ("verify key-epoch announcements", "gemeente/openen.py", "_verifieer_epochs"),
    ("key store request (HTTP round trip)", "gemeente/sleutelkluis.py", "sleutels"),
    ("open: unwrap DEK, AES-GCM, Avro bundle", "gemeente/openen.py", "_open"),
    ("order per subject", "gemeente/volgorde.py", "orden"),
    ("jsonl sink: schrijf", "gemeente/jsonl.py", "schrijf"),
    ("  of which to_json + json.dumps", "gemeente/jsonl.py", "dump_regel"),
    ("  of which fsync", "~", "<built-in method posix.fsync>"),
    ("offset commit", "gemeente/sdk.py", "commit"),
)


def profile_summary(path: Path, top: int = 15) -> dict:
    stats = pstats.Stats(str(path), stream=io.StringIO())
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.stats.items() if name == "consume")
    print(f"\nprofile of one jsonl run (cProfile: {total:.2f}s in consume(); it inflates Python calls, "
          "so read shares, not absolute times)")
    stages = {}
    for label, file, func in STAGES:
        ct = sum(v[3] for (f, _, name), v in stats.stats.items() if name == func and f.endswith(file))
        stages[label] = {"cumtime_s": round(ct, 3), "share": round(ct / total, 3)}
        print(f"  {label:<46}{ct:>7.3f}s {ct / total:>6.1%}")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"{'tottime s':>10}{'share':>7}{'cumtime s':>11}{'calls':>10}  function (by own time)")
    functions = []
    for (file, line, name), (_, nc, tt, ct, _) in rows:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}({name})" if line else name
        functions.append({"function": where, "calls": nc, "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3),
                          "tottime_share": round(tt / total, 3)})
        print(f"{tt:>10.3f}{tt / total:>7.1%}{ct:>11.3f}{nc:>10,}  {where}")
    return {"consume_cumtime_s": round(total, 3), "stages": stages, "top_by_own_time": functions}


# -- main -------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="records on the measured gemeente topic")
    ap.add_argument("--repeats", type=int, default=3, help="measured rounds (every scenario once per round)")
    ap.add_argument("--warmups", type=int, default=1, help="unreported rounds on the 2,000-record warm-up topic")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile'd jsonl run")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one worker run may take")
    ap.add_argument("--ceiling-records", type=int, default=500_000, help="records of the Kafka ceiling run")
    ap.add_argument("--keep-workdir", action="store_true", help="keep logs, key store, jsonl files, profile")
    ap.add_argument("--reset-topics-on-external-broker", action="store_true",
                    help=f"allow deleting gemeente.{GEMEENTE}/{WARM_GEMEENTE}.events.v1 on the broker "
                         "HERSTELBUS_BOOTSTRAP_SERVERS names")
    ap.add_argument("--worker", nargs=5, metavar=("SCENARIO", "GM", "GROUP", "N", "WORKDIR"), help=argparse.SUPPRESS)
    ap.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        scenario, gm, group, n, work = args.worker
        worker(scenario, gm, group, int(n), Path(work), args.profile_to)
        return

    from herstelbus.processes import stop

    started_at, load_at_start = time.monotonic(), os.getloadavg()
    with (_kit.bench_broker(name="gemeente-consume",
                            wipes=f"gemeente.{GEMEENTE}.events.v1 and gemeente.{WARM_GEMEENTE}.events.v1",
                            reset_allowed=args.reset_topics_on_external_broker) as bootstrap,
          _kit.work_dir(keep=args.keep_workdir, what="logs, key store, jsonl files and profile") as work):
        runs, profile, keystore = [], None, None
        try:
            fresh_topics(bootstrap)
            env = prepare(bootstrap, work, args.events)
            # the SDK only consumes: Kafka's consumer tool is its ceiling (records of the same mean size)
            ceiling = _ceiling.ceiling_on_new_topic(bootstrap, args.ceiling_records,
                                                    int(env["BENCH_MEAN_VALUE_BYTES"]))["consumer_events_per_s"]
            keystore, api = start_keystore(env, work / "keystore.log")
            env["HERSTELBUS_KEYSTORE_API"] = api

            def go(scenario: str, gm: str, n: int, rep: int, **kw) -> dict:
                return run(scenario, gm, n, rep, env, work, keystore, args.timeout, **kw)

            for _ in range(args.warmups):
                runs += [go(s, WARM_GEMEENTE, WARMUP_EVENTS, 0) for s in SCENARIOS]
            for rep in range(1, args.repeats + 1):
                runs += [go(s, GEMEENTE, args.events, rep) for s in SCENARIOS]
            if not args.no_profile:
                go("jsonl", GEMEENTE, args.events, -1, profile=work / "jsonl.prof")
                profile = profile_summary(work / "jsonl.prof")
        finally:
            if keystore is not None:
                stop(keystore, timeout_s=10)

    table = {}
    for s in SCENARIOS:
        reps = [r for r in runs if r["scenario"] == s and r["repetition"] > 0]
        rates = sorted(r["events_per_s"] for r in reps)
        ks = [r["keystore_cpu_s_per_1000"] for r in reps if r["keystore_cpu_s_per_1000"] is not None]
        table[s] = {"events_per_run": args.events, "repetitions": len(reps),
                    "events_per_s_median": round(statistics.median(rates), 1), "events_per_s_min": round(rates[0], 1),
                    "events_per_s_max": round(rates[-1], 1),
                    "cpu_s_per_1000_median": round(statistics.median(r["cpu_s_per_1000"] for r in reps), 4),
                    "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in reps), 1),
                    "keystore_cpu_s_per_1000_median": round(statistics.median(ks), 4) if ks else None}
    floor = table["raw"]["events_per_s_median"]
    for row in table.values():
        row["ratio_to_raw"] = round(row["events_per_s_median"] / floor, 3)
        row["ratio_to_ceiling"] = round(row["events_per_s_median"] / ceiling, 3)
        row["cpu_ceiling_events_per_s"] = round(1000 / row["cpu_s_per_1000_median"])  # a core to itself, no waits
    goal = f"gemeente consume+decrypt+jsonl sink >= {GOAL_RATE:,} events/s per process"
    goals = {goal: table["jsonl"]["events_per_s_median"] >= GOAL_RATE}

    print(f"\n{'scenario':<9}{'events/run':>11}{'events/s median':>17}{'(min–max)':>20}{'× raw':>8}{'× ceiling':>10}"
          f"{'CPU s/1000':>12}{'CPU ceiling/s':>15}{'peak RSS MB':>13}{'key store CPU s/1000':>22}")
    for name, row in table.items():
        spread = f"{row['events_per_s_min']:,.0f}–{row['events_per_s_max']:,.0f}"
        ks = row["keystore_cpu_s_per_1000_median"]
        print(f"{name:<9}{row['events_per_run']:>11,}{row['events_per_s_median']:>17,.0f}{spread:>20}"
              f"{row['ratio_to_raw']:>8.3f}{row['ratio_to_ceiling']:>10.3f}{row['cpu_s_per_1000_median']:>12.3f}{row['cpu_ceiling_events_per_s']:>15,}"
              f"{row['peak_rss_mb_max']:>13.0f}"
              f"{'-' if ks is None else f'{ks:.3f}':>22}")
    print(f"ceiling (Kafka's consumer tool, {args.ceiling_records:,} records): {ceiling:,.0f}/s")
    print()
    for g, met in goals.items():
        print(f"goal: {g}: {'met' if met else 'NOT met'}")

    import kafka
    from kafka.record import util as kafka_record_util

    libraries = {"kafka_python": kafka.__version__,
                 "kafka_python_crc32c": "C (crc32c package)" if kafka_record_util.crc32c_c else "pure Python"}
    meta = _kit.run_meta(started_at, load_at_start, bootstrap, libraries,
                         gemeente=GEMEENTE, events=args.events, mean_value_bytes=int(env["BENCH_MEAN_VALUE_BYTES"]),
                         repeats=args.repeats, warmups=args.warmups)
    _kit.write_results("gemeente-consume", {"meta": meta, "scenarios": table, "goals": goals, "ceiling_events_per_s": ceiling,
                                            "profile_jsonl": profile, "runs": runs})


if __name__ == "__main__":
    main()
