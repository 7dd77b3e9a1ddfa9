"""`tuilm export` of a long run: the exports against the ones they replaced (session 8).

    python bench/bench_export.py [--events 1000000] [--tb-events 100000]

A generated run (bench_tui's: N train events, diag every 50, eval every 1000; ~187 MB of JSON) is
exported three times, each in its own process so that its peak memory is its own:
  - per-event: the export as it was (tests/fixtures/reference_csv.py: every event decoded into a
    dict, one dict per row, the whole text built in memory);
  - columns, first export: tuiLM.export.export_csv on a run with no column cache (it parses the file
    through the reader and leaves a cache);
  - columns, cached: the same export again (the trainer leaves this cache at its checkpoints).
The three files must be byte-identical; wall time and peak resident memory are printed, with ratios.

Then `--to tensorboard` of a run of --tb-events (the old export needs about 5 minutes per 10^6):
  - per scalar: the export as it was (reference_export.reference_tensorboard: the list of every event,
    one add_scalar per field);
  - streamed: tuiLM.export.export_tensorboard (reader.iter_effective, one record per event).
tests/test_export.py checks that TensorBoard reads the same back from both.

Last, the live mirror's cost per train event (its thread writes each event the trainer emits): a
13-field event written with one add_scalar per field against TBWriter's one record, in this process
(median of 5 x 2,000 events, the writer's close included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import hashlib, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
how, run, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t = time.perf_counter()
if how == "per-event":
    from tests.fixtures.reference_export import reference_csv
    out.mkdir(parents=True, exist_ok=True)
    path = out / (run.name + ".csv")
    path.write_text(reference_csv(run))
elif how == "tb-per-scalar":
    from tests.fixtures.reference_export import reference_tensorboard
    path = next(reference_tensorboard(run, out).glob("events.out.tfevents.*"))
elif how == "tb-streamed":
    from tuiLM.export import export_tensorboard
    path = next(export_tensorboard(run, out).glob("events.out.tfevents.*"))
else:
    from tuiLM.export import export_csv
    path = export_csv(run, out)
wall = time.perf_counter() - t
digest = hashlib.sha256(path.read_bytes()).hexdigest()
print(json.dumps({{"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "sha": digest, "bytes": path.stat().st_size}}))
"""


def export(how: str, run: Path, out: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), how, str(run), str(out)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--tb-events", type=int, default=100_000)
    args = ap.parse_args()
    from bench_tui import make_big_run
    from tuiLM.reader import CACHE

    with tempfile.TemporaryDirectory() as tmp:
        run = make_big_run(Path(tmp), args.events)
        t = time.perf_counter()
        old = export("per-event", run, Path(tmp) / "old")
        assert not (run / CACHE).exists()
        first = export("columns", run, Path(tmp) / "first")
        cached = export("columns", run, Path(tmp) / "cached")
        assert (run / CACHE).exists()
        for name, r in (("per-event", old), ("columns, first export", first), ("columns, cached", cached)):
            print(f"{name:24s} {r['wall']:6.2f} s  {r['rss_mb']:7.0f} MB peak  ({r['bytes'] / 1e6:.0f} MB of CSV)")
        same = old["sha"] == first["sha"] == cached["sha"]
        print(f"identical CSV: {same}")
        print(f"first export: {old['wall'] / first['wall']:.1f}x faster, {old['rss_mb'] / first['rss_mb']:.1f}x less memory")
        print(f"cached:       {old['wall'] / cached['wall']:.1f}x faster, {old['rss_mb'] / cached['rss_mb']:.1f}x less memory")
        print(f"(all in {time.perf_counter() - t:.0f} s)")
        if not same:
            sys.exit("the exports differ")
    with tempfile.TemporaryDirectory() as tmp:
        run = make_big_run(Path(tmp), args.tb_events)
        old = export("tb-per-scalar", run, Path(tmp) / "old")
        new = export("tb-streamed", run, Path(tmp) / "new")
        for name, r in (("tensorboard, per scalar", old), ("tensorboard, streamed", new)):
            print(f"{name:24s} {r['wall']:6.2f} s  {r['rss_mb']:7.0f} MB peak  ({r['bytes'] / 1e6:.0f} MB of events)")
        print(f"tensorboard: {old['wall'] / new['wall']:.1f}x faster, {old['rss_mb'] / new['rss_mb']:.1f}x less memory")
    sink_write_per_event()


def sink_write_per_event() -> None:
    import statistics

    from tensorboardX import SummaryWriter

    from tuiLM.export import TBWriter, numeric_fields

    ev = {"v": 1, "kind": "train", "time": time.time(), "step": 1, "tokens": 1000, "loss": 3.2, "lr": 1e-3,
          "grad_norm": 0.5, "tokens_per_s": 12000.0, "dt_ms": 100.0, "mem_gib": 0.5, "flops_per_s": 1e9,
          "mfu": 0.01, "rss_gib": 0.3, "cpu_pct": 99.0, "gpu_util": 0.0, "gpu_mem_gib": 0.0}
    times: dict[str, list[float]] = {"per scalar": [], "one record": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(5):
            for how in times:
                w = SummaryWriter(f"{tmp}/{how}{r}", flush_secs=3600, max_queue=100)
                tb = TBWriter(w, {})
                t = time.perf_counter()
                for i in range(2000):
                    if how == "per scalar":
                        for k, v in numeric_fields(ev).items():
                            w.add_scalar(f"train/{k}", v, i, walltime=ev["time"])
                    else:
                        tb.write({**ev, "step": i})
                w.close()
                times[how].append((time.perf_counter() - t) / 2000)
    a, b = (statistics.median(times[k]) * 1e6 for k in times)
    print(f"live mirror, {len(numeric_fields(ev))}-field train event: per scalar {a:.0f} us, one record {b:.0f} us: {a / b:.1f}x")


if __name__ == "__main__":
    main()
