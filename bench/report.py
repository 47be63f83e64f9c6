"""The latest run of every benchmark in one place (issue 9): ``bench/results/<date>.json`` (each
script's latest results file, as written), ``bench/results/<date>.png`` (throughput per scenario
against its floor and Kafka's ceiling; latency percentiles per rate) and the Markdown table
printed on stdout, for ``bench/README.md``. ``make bench`` runs it last; it measures nothing itself.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import _kit

SCRIPTS = ("router", "growth", "gemeente-consume", "replay")  # each one's <stem>-<date>.json


def latest() -> dict[str, dict]:
    """Per script, its newest ``<script>-<date>.json`` (named by date, so the newest sorts last)."""
    found = {}
    for stem in SCRIPTS:
        files = sorted(p for p in _kit.RESULTS.glob(f"{stem}-20*.json")
                       if p.stem[len(stem) + 1:][:4].isdigit() and len(p.stem) == len(stem) + 11)
        if files:
            found[stem] = {"file": files[-1].name, **json.loads(files[-1].read_text())}
    return found


def rows(results: dict[str, dict]) -> list[dict]:
    """One row per measured scenario: events/s, its ratios, CPU and memory where measured."""
    out = []
    for stem, result in results.items():
        for name, row in (result.get("scenarios") or {}).items():
            out.append({"bench": stem, "scenario": name, "events_per_s": row.get("events_per_s_median"),
                        "min": row.get("events_per_s_min"), "max": row.get("events_per_s_max"),
                        # the SDK bench's floor is its plain kafka-python consumer ("raw")
                        "x_floor": row.get("ratio_to_floor", row.get("ratio_to_raw")),
                        "x_ceiling": row.get("ratio_to_ceiling"),
                        "cpu_s_per_1000": row.get("cpu_s_per_1000_median"), "rss_mb": row.get("peak_rss_mb_max")})
        for mark in result.get("marks") or ():  # growth: one router run, its rate at each mark
            out.append({"bench": stem, "scenario": f"router at {mark['mark']:,}", "events_per_s": mark["events_per_s"],
                        "min": None, "max": None, "x_floor": mark["ratio_to_floor"],
                        "x_ceiling": mark["ratio_to_ceiling"], "cpu_s_per_1000": mark["cpu_s_per_1000"],
                        "rss_mb": result.get("peak_rss_mb")})
    return out


def latencies(results: dict[str, dict]) -> list[dict]:
    by_rate = list(results.get("router", {}).get("latency_by_rate") or [])
    if not by_rate and results.get("router", {}).get("latency"):
        by_rate = [results["router"]["latency"]]
    return by_rate


def markdown(table: list[dict], lat: list[dict], goals: dict[str, bool]) -> str:
    def f(v: object, fmt: str = ",.0f") -> str:
        return "" if v is None else format(v, fmt)

    lines = ["| bench | scenario | events/s median (min–max) | × floor | × ceiling | CPU s/1000 | peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in table:
        spread = f" ({f(r['min'])}–{f(r['max'])})" if r["min"] is not None and r["min"] != r["max"] else ""
        lines.append(f"| {r['bench']} | {r['scenario']} | {f(r['events_per_s'])}{spread} | {f(r['x_floor'], '.3f')} "
                     f"| {f(r['x_ceiling'], '.3f')} | {f(r['cpu_s_per_1000'], '.3f')} | {f(r['rss_mb'])} |")
    if lat:
        lines += ["", "| latency at | p50 ms | p95 ms | p99 ms | caught up |", "|---:|---:|---:|---:|---|"]
        for x in lat:
            mark = {q: ("≥" if x.get(f"p{q}_is_lower_bound") else "") for q in (50, 95, 99)}
            lines.append(f"| {x['rate_target']:,}/s | {mark[50]}{x['p50_ms']:,.0f} | {mark[95]}{x['p95_ms']:,.0f} | "
                         f"{mark[99]}{x['p99_ms']:,.0f} | "
                         + (f"{x['drain_s']} s after the last publish" if x.get("drain_s") is not None else "no") + " |")
    if goals:
        lines += ["", *(f"- {goal}: **{'met' if met else 'not met'}**" for goal, met in goals.items())]
    return "\n".join(lines)


def _baseline(row: dict) -> bool:
    """Kafka's ceiling and the pass-through floors (the SDK bench calls its floor ``raw``)."""
    return "floor" in row["scenario"] or row["scenario"] in ("ceiling", "raw")


def chart(table: list[dict], lat: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 1]})
    shown = [r for r in table if r["events_per_s"]]
    labels = [f"{r['bench']}\n{r['scenario']}" for r in shown]
    left.barh(labels, [r["events_per_s"] for r in shown], color=["#4c72b0" if _baseline(r) else "#dd8452"
                                                                  for r in shown])
    left.set_xscale("log")
    left.set_xlabel("events/s (median, log scale)")
    left.invert_yaxis()
    for y, r in enumerate(shown):
        note = " ".join(x for x in (f"×floor {r['x_floor']:.2f}" if r["x_floor"] else "",
                                    f"×ceiling {r['x_ceiling']:.3f}" if r["x_ceiling"] else "") if x)
        left.text(r["events_per_s"], y, f" {r['events_per_s']:,.0f} {note}", va="center", fontsize=8)
    left.set_title("throughput (blue: Kafka ceiling and pass-through floors)")
    if lat:
        for q, marker in ((50, "o"), (95, "s"), (99, "^")):
            right.plot([x["rate_target"] for x in lat], [x[f"p{q}_ms"] for x in lat], marker=marker, label=f"p{q}")
        right.set_yscale("log")
        right.set_xlabel("published events/s")
        right.set_ylabel("UHT publish → gemeente topic, ms")
        right.legend()
        right.set_title("router latency")
    else:
        right.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    results = latest()
    if not results:
        raise SystemExit(f"no results in {_kit.RESULTS}: run the benchmarks first (make bench)")
    table, lat = rows(results), latencies(results)
    goals = {goal: met for r in results.values() for goal, met in (r.get("goals") or {}).items()}
    today = dt.date.today().isoformat()
    combined = _kit.RESULTS / f"{today}.json"
    combined.write_text(json.dumps({"date": today, "table": table, "latency": lat, "goals": goals,
                                    "results": results}, indent=2, default=str) + "\n")
    png = _kit.RESULTS / f"{today}.png"
    chart(table, lat, png)
    print(markdown(table, lat, goals))
    print(f"\n# written {combined.relative_to(_kit.REPO)} and {png.relative_to(_kit.REPO)}")


if __name__ == "__main__":
    main()
