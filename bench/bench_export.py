"""`tuilm export --to csv` of a long run: the columnar export against the per-event one it replaced.

    python bench/bench_export.py [--events 1000000]

A generated run (bench_tui's: N train events, diag every 50, eval every 1000; ~187 MB of JSON) is
exported three times, each in its own process so that its peak memory is its own:
  - per-event: the export as it was (tests/fixtures/reference_csv.py: every event decoded into a
    dict, one dict per row, the whole text built in memory);
  - columns, first export: tuiLM.export.export_csv on a run with no column cache (it parses the file
    through the reader and leaves a cache);
  - columns, cached: the same export again (the trainer leaves this cache at its checkpoints).
The three files must be byte-identical; wall time and peak resident memory are printed, with ratios.
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
    from tests.fixtures.reference_csv import reference_csv
    out.mkdir(parents=True, exist_ok=True)
    path = out / (run.name + ".csv")
    path.write_text(reference_csv(run))
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


if __name__ == "__main__":
    main()
