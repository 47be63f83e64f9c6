"""µs per event to seal a full overdracht and to open it (issue 4, property 8), in both cipher
suites (issue 12): the hybrid ML-KEM-768 + X25519 default and the classical x25519. Per event the
work is the same symmetric recipe in both; a suite differs only per key epoch (HPKE wrap, one or two
signatures, their check), printed on its own and amortised over the run's events.

The record is realistic and complete: persoon, adres, telefoon, e-mail, toeslagpartner, urgentie,
dossiernummer, aanmelddatum. Its personal data is ONE sealed bundle per event (fastavro encoding of
``contracts.pii.bundle_schema``, one AES-256-GCM seal under a fresh data key, the data key wrapped
under the epoch's KEK). Opening is amortised: the keyring's KEK cache is warm (one HPKE open per
epoch, not per event), as in a gemeente consumer reading its stream.

Two same-process baselines say what the recipe costs on top of what it cannot avoid: a bare
AES-256-GCM encrypt/decrypt of the same plaintext bytes with a reused key object, and a bare
fastavro encode/decode of the same bundle with the same parsed schema.

    .venv/bin/python bench/seal_open.py [--events 2000] [--repeats 21]

Goal (issue 4): ≤ 15 µs to seal and ≤ 15 µs to open on this machine. The figures printed are
measured, never asserted: each repeat times all events, median and p95 are over the repeats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "privacy"))

import fastavro  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from herstelbus.core.privacy import (  # noqa: E402
    HYBRID_SUITE,
    X25519_SUITE,
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


def stats(runs: list[float]) -> tuple[float, float]:
    runs = sorted(runs)
    return statistics.median(runs), runs[min(len(runs) - 1, round(0.95 * (len(runs) - 1)))]


def line(name: str, runs: list[float], *bases: tuple[str, list[float]]) -> str:
    med, p95 = stats(runs)
    ratios = "".join(f"  ×{med / stats(b)[0]:4.1f} {label}" for label, b in bases)
    return f"{name:<40} median {med:6.2f} µs   p95 {p95:6.2f} µs{ratios}"


def full_overdracht(i: int) -> dict:
    """Even fixture records carry a toeslagpartner; every one has adres, telefoon, e-mail, urgentie."""
    rec = overdracht_record(2 * i)
    assert all(rec[k] is not None for k in ("adres", "telefoon", "email", "toeslagpartner", "urgentie"))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()

    now = dt.datetime.now(dt.timezone.utc)
    layout, source = _overdracht_layout()
    secret = PseudonymSecret.generate()
    events = []
    for i in range(args.events):
        rec = full_overdracht(i)
        events.append((rec, str(uuid.uuid4()), pseudonymise(rec["persoon"]["bsn"], secret)))
    print(f"# herstelbus privacy bench — {platform.python_implementation()} {platform.python_version()}, "
          f"fastavro {fastavro.__version__}, {os.cpu_count()} CPUs, {args.events} events × {args.repeats} repeats")
    for suite in (HYBRID_SUITE, X25519_SUITE):  # the default first
        measure(suite, events, layout, source, secret, now, args)


def epoch_costs(suite, now: dt.datetime, trials: int = 30) -> tuple[float, float]:
    """µs for one key epoch: the exchange's (HPKE wrap + its signatures) and the gemeente's
    (signature check(s) + HPKE unwrap of the KEK), medians of ``trials``."""
    sk, make, take = generate_signing_key(), [], []
    for _ in range(trials):
        gk = generate_gemeente_key(suite)
        reg = GemeenteKey("GM0363", gk.public_key(), now - dt.timedelta(days=30))
        t0 = time.perf_counter_ns()
        epoch = new_key_epoch(reg, sk, now)
        make.append((time.perf_counter_ns() - t0) / 1000)
        ring = OpeningKeyring("GM0363", [gk], [sk.public_key()])
        wire = epoch.announcement.to_bytes()
        t0 = time.perf_counter_ns()
        ring.add(wire)
        ring._opening_keys(epoch.kek_id)  # the one HPKE unwrap per epoch, as on the first record
        take.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(make), statistics.median(take)


def measure(suite, events, layout, source, secret, now, args) -> None:
    gk, sk = generate_gemeente_key(suite), generate_signing_key()
    reg = GemeenteKey("GM0363", gk.public_key(), now - dt.timedelta(days=30))
    epoch = new_key_epoch(reg, sk, now)
    ring = OpeningKeyring("GM0363", [gk], [sk.public_key()])
    ring.add(epoch.announcement.to_bytes())

    def seal(e):
        return seal_event(e[0], layout=layout, epoch=epoch, event_id=e[1], subject=e[2])

    # What a gemeente reads: the sealed record with the router's metadata, as decoded from its topic.
    def routed(e):
        s = seal(e)
        meta = {"subject": e[2], "routering": {"reden": "WOONGEMEENTE", "oorspronkelijke_gemeentecode": "GM0363",
                "opvolger_gemeentecode": None, "gerouteerd_op": now}, "sleutel_id": reg.key_id,
                "bron_schema": layout.fingerprint_hex}
        return {**s.record, **meta}, s.wrapped_key, meta

    sealed = [(routed(e), e) for e in events]

    def open_(s):
        (record, row, _), e = s
        return open_event(record, layout=layout, keyring=ring, event_id=e[1], subject=e[2], key=row)

    assert all(open_(s) == {**s[1][0], **s[0][2]} for s in sealed[:50])  # sanity, not timing

    # Baselines on the same data: the bundle as fastavro sees it inside seal_event (the same dict,
    # union branches named), its bytes, and those bytes encrypted once with a reused AES-GCM key.
    parsed = layout._parsed
    bundles = []
    for rec, _, _ in events:
        b = {n: rec[n] for n in layout.paths}
        for name, branch in layout._named_branches:
            if b[name] is not None:
                b[name] = (branch, b[name])
        bundles.append(b)
    plain_bundles = [{n: rec[n] for n in layout.paths} for rec, _, _ in events]
    plain = [layout._encode(rec) for rec, _, _ in events]

    def avro_enc(b):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, b)
        return out.getvalue()

    def avro_dec(p):
        return fastavro.schemaless_reader(io.BytesIO(p), parsed, None)

    assert [avro_enc(b) for b in bundles[:50]] == plain[:50] == [avro_enc(b) for b in plain_bundles[:50]]
    aes = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    ct = [aes.encrypt(nonce, p, None) for p in plain]

    for _ in range(2):  # warm-up
        per_event_us(seal, events, 1)
        per_event_us(open_, sealed, 1)

    r = args.repeats
    aes_enc = per_event_us(lambda p: aes.encrypt(nonce, p, None), plain, r)
    aes_dec = per_event_us(lambda c: aes.decrypt(nonce, c, None), ct, r)
    fa_enc = per_event_us(avro_enc, bundles, r)
    fa_enc_plain = per_event_us(avro_enc, plain_bundles, r)
    fa_dec = per_event_us(avro_dec, plain, r)
    s_runs = per_event_us(seal, events, r)
    o_runs = per_event_us(open_, sealed, r)
    pseud = per_event_us(lambda e: pseudonymise(e[0]["persoon"]["bsn"], secret), events, r)

    exchange_epoch_us, gemeente_epoch_us = epoch_costs(suite, now)
    print(f"\n## suite {suite.name}: announcement {len(epoch.announcement.to_bytes()):,} bytes; per key epoch "
          f"{exchange_epoch_us:,.0f} µs at the exchange (HPKE wrap + signatures), {gemeente_epoch_us:,.0f} µs at "
          f"the gemeente (signature check + HPKE unwrap)")
    print(f"# record: full overdracht ({source}); one sealed bundle of {len(layout.paths)} fields {layout.paths}, "
          f"{statistics.mean(len(p) for p in plain):.0f} plaintext bytes/event on average, "
          f"{statistics.mean(len(s[0]['verzegeld']) for s, _ in sealed):.0f} sealed")
    print(line("baseline AES-GCM encrypt (bare)", aes_enc))
    print(line("baseline AES-GCM decrypt (bare)", aes_dec))
    print(line("baseline fastavro encode (bundle)", fa_enc))
    print(line("  same, union branch by validation", fa_enc_plain))
    print(line("baseline fastavro decode (bundle)", fa_dec))
    print(line("seal_event", s_runs, ("AES-GCM", aes_enc), ("fastavro", fa_enc)))
    print(line("open_event (KEK cached)", o_runs, ("AES-GCM", aes_dec), ("fastavro", fa_dec)))
    print(line("pseudonymise (router, per event)", pseud))
    s_med, o_med = stats(s_runs)[0], stats(o_runs)[0]
    print(f"# seal − fastavro encode = {s_med - stats(fa_enc)[0]:.2f} µs; "
          f"open − fastavro decode = {o_med - stats(fa_dec)[0]:.2f} µs (crypto, key wrap, record shaping)")
    n = len(events)  # events under the one epoch of this run; an hour's epoch at 1,000/s holds 3.6M
    s_am, o_am = s_med + exchange_epoch_us / n, o_med + gemeente_epoch_us / n
    print(f"# amortised over {n:,} events per epoch: seal {s_am:.2f} µs, open {o_am:.2f} µs per event "
          f"(at 3,600,000 per epoch: {s_med + exchange_epoch_us / 3.6e6:.2f} / {o_med + gemeente_epoch_us / 3.6e6:.2f})")
    goal = "meets" if s_am <= 15 and o_am <= 15 else "MISSES"
    print(f"# goal ≤15 µs seal and open (median, amortised over {n:,}): {goal}")


def _overdracht_layout() -> tuple[PiiLayout, str]:
    """The live overdracht contract when it is there (pii tags from the contracts), else the frozen
    copy the unit tests use."""
    try:
        from herstelbus.core.contracts.catalogue import get_catalogue

        return PiiLayout(get_catalogue().current("overdracht").schema), "live contract"
    except Exception:
        return PiiLayout(OVERDRACHT_SCHEMA, OVERDRACHT_PII_PATHS), "test fixture copy"


if __name__ == "__main__":
    main()
