"""µs per event to seal an overdracht-sized record and to open it (issue 4, property 8).

Opening is amortised: the keyring's KEK cache is warm (one HPKE open per epoch, not per event), as
in a gemeente consumer reading its stream. The baseline is a bare AES-256-GCM encrypt of the same
plaintext bytes with a reused key object, measured in the same process, so the ratio says how much
the recipe costs on top of the one cipher call it cannot avoid.

    .venv/bin/python bench/seal_open.py [--events 2000] [--repeats 15]

Goal (issue 4): ≤ 15 µs to seal and ≤ 15 µs to open on this machine. The figures printed are measured,
never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "privacy"))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from herstelbus.core.privacy import (  # noqa: E402
    GemeenteKey,
    OpeningKeyring,
    PiiLayout,
    PseudonymSecret,
    generate_gemeente_key,
    generate_signing_key,
    new_key_epoch,
    open_event,
    pseudonymise,
    seal_event,
)
from privacy_fixtures import OVERDRACHT_PII_PATHS, OVERDRACHT_SCHEMA, overdracht_record  # noqa: E402


def per_event_us(fn, items, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for it in items:
            fn(it)
        runs.append((time.perf_counter_ns() - t0) / len(items) / 1000)
    return runs


def summary(name: str, runs: list[float], base: float | None = None) -> str:
    runs = sorted(runs)
    med = statistics.median(runs)
    p95 = runs[min(len(runs) - 1, round(0.95 * (len(runs) - 1)))]
    ratio = f"  ×{med / base:5.1f} baseline" if base else ""
    return f"{name:<34} median {med:7.2f} µs   p95 {p95:7.2f} µs{ratio}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    now = dt.datetime.now(dt.timezone.utc)
    gk, sk = generate_gemeente_key(), generate_signing_key()
    reg = GemeenteKey("GM0363", gk.public_key(), now - dt.timedelta(days=30))
    epoch = new_key_epoch(reg, sk, now)
    ring = OpeningKeyring("GM0363", [gk], [sk.public_key()])
    ring.add(epoch.announcement.to_bytes())
    layout, source = _overdracht_layout()
    secret = PseudonymSecret.generate()

    events = []
    for i in range(args.events):
        rec = overdracht_record(i)
        events.append((rec, str(uuid.uuid4()), pseudonymise(rec["persoon"]["bsn"], secret)))

    def seal(e):
        return seal_event(e[0], layout=layout, epoch=epoch, event_id=e[1], subject=e[2])

    sealed = [(seal(e), e) for e in events]

    def open_(s):
        sealed_event, e = s
        return open_event(
            sealed_event.record, layout=layout, keyring=ring, event_id=e[1], subject=e[2], key=sealed_event.wrapped_key
        )

    # Baseline: the same plaintext bytes the recipe encrypts, one bare AES-GCM call, key object reused.
    codecs = [f.codec for f in layout._fields]
    plain = [b"".join(c.encode(_get(e[0], f.path)) for c, f in zip(codecs, layout._fields)) for e in events]
    aes = AESGCM(os.urandom(32))
    nonce = os.urandom(12)

    def baseline(p):
        return aes.encrypt(nonce, p, None)

    ct = [aes.encrypt(nonce, p, None) for p in plain]

    def baseline_dec(c):
        return aes.decrypt(nonce, c, None)

    # The same personal data as ONE sealed sub-record: shows the per-field share of the cost, for the
    # contracts' choice of how many fields to tag.
    one_layout = PiiLayout(ONE_FIELD_SCHEMA, ["persoonsgegevens"])
    one_events = [(_one_field(e[0]), e[1], e[2]) for e in events]

    def seal_one(e):
        return seal_event(e[0], layout=one_layout, epoch=epoch, event_id=e[1], subject=e[2])

    one_sealed = [(seal_one(e), e) for e in one_events]

    def open_one(s):
        sealed_event, e = s
        return open_event(
            sealed_event.record, layout=one_layout, keyring=ring, event_id=e[1], subject=e[2], key=sealed_event.wrapped_key
        )

    assert all(open_(s) == e[0] for s, e in zip(sealed[:50], events[:50]))  # sanity, not timing
    assert all(open_one(s) == e[0] for s, e in zip(one_sealed[:50], one_events[:50]))
    for _ in range(2):  # warm-up
        per_event_us(seal, events, 1)
        per_event_us(open_, sealed, 1)

    b_enc = per_event_us(baseline, plain, args.repeats)
    b_dec = per_event_us(baseline_dec, ct, args.repeats)
    s_runs = per_event_us(seal, events, args.repeats)
    o_runs = per_event_us(open_, sealed, args.repeats)
    s1_runs = per_event_us(seal_one, one_events, args.repeats)
    o1_runs = per_event_us(open_one, one_sealed, args.repeats)
    pseud = per_event_us(lambda e: pseudonymise(e[0]["persoon"]["bsn"], secret), events, args.repeats)

    print(f"# herstelbus privacy bench — {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {args.events} events × {args.repeats} repeats")
    print(f"# record: overdracht ({source}), {len(layout.paths)} sealed fields {layout.paths}, "
          f"{statistics.mean(len(p) for p in plain):.0f} plaintext bytes/event on average")
    print(summary("baseline AES-GCM encrypt (bare)", b_enc))
    print(summary("baseline AES-GCM decrypt (bare)", b_dec))
    print(summary("seal_event", s_runs, statistics.median(b_enc)))
    print(summary("open_event (KEK cached)", o_runs, statistics.median(b_dec)))
    print(summary("seal_event, PII as 1 sub-record", s1_runs, statistics.median(b_enc)))
    print(summary("open_event, PII as 1 sub-record", o1_runs, statistics.median(b_dec)))
    print(summary("pseudonymise", pseud))
    goal = "meets" if statistics.median(s_runs) <= 15 and statistics.median(o_runs) <= 15 else "MISSES"
    print(f"# goal ≤15 µs seal and open (median): {goal}")


_PII = set(OVERDRACHT_PII_PATHS)
ONE_FIELD_SCHEMA = {
    **OVERDRACHT_SCHEMA,
    "fields": [f for f in OVERDRACHT_SCHEMA["fields"] if f["name"] not in _PII]
    + [
        {
            "name": "persoonsgegevens",
            "type": {
                "type": "record",
                "name": "Persoonsgegevens",
                "fields": [{k: v for k, v in f.items() if k != "pii"} for f in OVERDRACHT_SCHEMA["fields"] if f["name"] in _PII],
            },
        }
    ],
}


def _one_field(rec: dict) -> dict:
    out = {k: v for k, v in rec.items() if k not in _PII}
    out["persoonsgegevens"] = {k: rec[k] for k in OVERDRACHT_PII_PATHS}
    return out


def _overdracht_layout() -> tuple[PiiLayout, str]:
    """The live overdracht contract when it is there (pii paths from the contracts), else the
    frozen copy the unit tests use."""
    try:
        from herstelbus.core.contracts.catalogue import get_catalogue

        return PiiLayout(get_catalogue().current("overdracht").schema), "live contract"
    except Exception:
        return PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS), "test fixture copy"


def _get(rec, path):
    node = rec
    for p in path:
        node = node[p]
    return node


if __name__ == "__main__":
    main()
