"""`make bench`: every figure beside its alternative, measured in the same run; a table and bench/results.json.

    python -m bench.run             # the issue's sizes (100,000 contracts, 1,000,000 tickets)
    python -m bench.run --quick     # small sizes, about two minutes
    python -m bench.run --only drafting,http
    python -m bench.run --only ingest --merge   # re-measure one, keep the others' figures

A benchmark that cannot run (PostgreSQL down, an endpoint not built yet) says why in its row and
the others still run.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
import traceback
from pathlib import Path

from bench.harness import environment, machine
from bench.report import Row, markdown, table

BENCHMARKS = {
    "drafting": "bench.drafting",
    "http": "bench.http_read",
    "events": "bench.event_latency",
    "ingest": "bench.sla_ingest",
    "scale": "bench.scale",
}
RESULTS = Path(__file__).with_name("results.json")
QUICK_RESULTS = Path(__file__).with_name("results-quick.json")   # a quick run never overwrites the full figures
README = Path(__file__).with_name("README.md")
MARKERS = ("<!-- results -->", "<!-- /results -->")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--output", type=Path, help="default bench/results.json (results-quick.json with --quick)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other benchmarks' figures already in the output; replace only these")
    args = parser.parse_args(argv)
    args.output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)

    results = {"machine": machine(), "quick": args.quick, "benchmarks": {}}
    rows: list[Row] = []
    started = time.monotonic()
    with environment(args.quick) as env:
        for name in chosen:
            print(f"… {name}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                outcome = importlib.import_module(BENCHMARKS[name]).run(env)
            except Exception as exc:   # one broken benchmark must not hide the others' figures
                traceback.print_exc()
                outcome = {"error": f"{type(exc).__name__}: {exc}"[:500], "rows": [Row(name, "not measured",
                                                                                    note=str(exc)[:120])]}
            outcome["seconds"] = round(time.monotonic() - t0, 1)
            outcome["measured_at"] = machine()["date"]
            rows += outcome["rows"]
            results["benchmarks"][name] = {k: v for k, v in outcome.items() if k != "rows"}
    results["seconds"] = round(time.monotonic() - started, 1)
    if args.merge and args.output.exists():
        results, rows = merged(json.loads(args.output.read_text()), results, rows)
    results["table"] = [r.as_dict() for r in rows]
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    m = results["machine"]
    print(f"\nQiyue benchmarks{' (quick)' if args.quick else ''}: {m['cpu']}, {m['cores']} cores, "
          f"Python {m['python']}, {m['os']}, {m['date']}\n")
    print(table(rows))
    print(f"\n{results['seconds']:g} s; written to {args.output}")
    if not args.quick and set(results["benchmarks"]) == set(BENCHMARKS):
        record_in_readme(results, rows)
    return 0


def merged(previous: dict, latest: dict, rows: list[Row]) -> tuple[dict, list[Row]]:
    """The previous results with the benchmarks just run replaced (each keeps its `measured_at`)."""
    fresh = set(latest["benchmarks"])
    kept = {name: figures for name, figures in previous.get("benchmarks", {}).items() if name not in fresh}
    benchmarks = {name: latest["benchmarks"].get(name) or kept[name]
                  for name in BENCHMARKS if name in fresh or name in kept}
    old_rows = [Row(**r) for r in previous.get("table", ()) if r["benchmark"] not in fresh]
    ordered = [r for name in BENCHMARKS for r in (rows if name in fresh else old_rows) if r.benchmark == name]
    seconds = round(sum(b.get("seconds", 0) for b in benchmarks.values()), 1)
    return {**latest, "benchmarks": benchmarks, "seconds": seconds}, ordered


def record_in_readme(results: dict, rows: list[Row]) -> None:
    """A full run's table and machine replace the ones in bench/README.md (between the markers)."""
    if not README.exists():
        return
    m = results["machine"]
    dates = sorted({b.get("measured_at") or m["date"] for b in results["benchmarks"].values()})
    when = dates[0] if len(dates) == 1 else f"from {dates[0]} to {dates[-1]} (see measured_at in results.json)"
    section = (f"{MARKERS[0]}\nMeasured {when} on {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
               f"{m['os']} ({results['seconds']:g} s of benchmarking).\n\n{markdown(rows)}\n{MARKERS[1]}")
    text = README.read_text()
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start >= 0 and end > start:
        README.write_text(text[:start] + section + text[end + len(MARKERS[1]):])


if __name__ == "__main__":
    sys.exit(main())
