"""The app's live plots: opening a 10^6-event run, redrawing the dashboard, and the cost to a trainer.

    python bench/bench_tui.py [--events 1000000] [--repeats 3] [--trainer-steps 300] [--skip-trainer | --skip-open | --redraw-only]

1. open: a generated run with N train events (+ diag every 50, eval every 1000; ~187 MB of JSON)
   - decoding into columns: the best per-line reader we could write (orjson.loads, the contract's
     type checks, np.fromiter columns; also without the checks, and orjson.loads alone) against the
     signature matcher (tuiLM/lineparse.py) through reader.RunReader without its cache
   - the column cache (reader.RunReader, events.cache): writing it (the trainer's last refresh),
     re-opening from it (loader only), a run summary from it (the runs list, `tuilm runs`)
   - the app at 160x48: a run whose trainer left its cache, opened from the command line (app
     start-up included) and from a running app (the re-open), until every event is drawn; the same
     without a cache (a run killed before any checkpoint); how late the event loop ran meanwhile
2. redraw: all panels of that dashboard rebuilt (min/max downsampling + braille raster), cold
   (first draw with EMA on: EMA and block caches built) and warm (toggling a view option), and
   the live case: 1,000 new train events polled and drawn
3. trainer: the same tiny CPU run headless and with the app attached (watching its dashboard),
   interleaved, tokens/s from the trainer's own events; and the CPU the app itself used meanwhile.

All ratios are measured within one run of this script. Nothing here imports torch (the trainer is
its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.fixture_runs import write_big_events, write_run  # noqa: E402
from tuiLM.config.load import default_preset  # noqa: E402
from tuiLM.config.write import dumps_resolved  # noqa: E402
from tuiLM.events import EventWriter, sanitize  # noqa: E402
from tuiLM import reader  # noqa: E402
from tuiLM.reader import CACHE, RunReader, read_events, summarize  # noqa: E402
from tuiLM.tui.app import make_app  # noqa: E402
from tuiLM.tui.screens.dashboard import DashboardScreen  # noqa: E402
from tuiLM.tui.widgets.plot import render_plot  # noqa: E402

SIZE = (160, 48)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_big_run(root: Path, n: int) -> Path:
    run = root / "big"
    run.mkdir(parents=True)
    preset = default_preset().with_values({"model.arch": "mhc", "train.max_steps": n, "model.mhc_gate": True})
    (run / "preset.toml").write_text(dumps_resolved(preset))
    t = time.perf_counter()
    size = write_big_events(run / "events.jsonl", n)
    print(f"generated {n:,} train events, {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
    return run


def read_time(run: Path) -> tuple[float, int]:
    """The whole file into the reader's columns with the signature matcher, no cache."""
    t = time.perf_counter()
    r = RunReader(run, cache=False)
    r.poll()
    return time.perf_counter() - t, r.tables["train"].n


NAN = float("nan")


def orjson_columns(run: Path, checks: bool = True) -> tuple[float, int]:
    """The best per-line reader we could write, for the matcher to beat: ``orjson.loads`` each line,
    the contract's type checks (``events.sanitize``; ``checks=False`` leaves them out, which the
    contract does not allow), rows grouped by kind, then each column built at C speed
    (``np.fromiter``)."""
    import orjson

    t = time.perf_counter()
    rows: dict[str, list[dict]] = {k: [] for k in reader.TABLE_KINDS}
    other, skipped = [], 0
    with open(run / "events.jsonl", "rb") as fh:
        for line in fh:
            try:
                ev = sanitize(orjson.loads(line)) if checks else orjson.loads(line)
            except orjson.JSONDecodeError:
                ev = None
            if ev is None:
                skipped += 1
                continue
            (rows.get(ev["kind"], other)).append(ev)
    tables = {}
    for kind, evs in rows.items():
        names: set[str] = set()
        for ev in evs:
            names.update(ev)
        cols = {}
        for name in names - {"v", "kind"}:
            try:
                cols[name] = np.fromiter((ev.get(name, NAN) for ev in evs), float, len(evs))
            except (TypeError, ValueError):  # not a numeric field
                pass
        tables[kind] = cols
    return time.perf_counter() - t, len(tables["train"]["step"])


def loads_only(run: Path) -> float:
    """Only ``orjson.loads`` of every line (no checks, no columns): what no per-line reader can beat."""
    import orjson

    t = time.perf_counter()
    with open(run / "events.jsonl", "rb") as fh:
        for line in fh:
            orjson.loads(line)
    return time.perf_counter() - t


def cache_times(run: Path) -> tuple[float, float, float]:
    """(write the cache after a full read, re-open from it: loader only, a summary from it)."""
    (run / CACHE).unlink(missing_ok=True)
    r = RunReader(run)
    r.poll()
    t = time.perf_counter()
    assert r.save_cache()
    write = time.perf_counter() - t
    t = time.perf_counter()
    again = RunReader(run)
    again.poll()
    load = time.perf_counter() - t
    assert again._cache_at > 0 and again.tables["train"].n == r.tables["train"].n
    t = time.perf_counter()
    s = summarize(run)
    assert s.step == r.summary().step
    return write, load, time.perf_counter() - t


async def open_app(run: Path) -> dict[str, float]:
    """Open the run in the app from the command line (`tuilm open RUN`: start-up included): until the
    dashboard first draws every panel, and until every event is read and drawn. Meanwhile a probe
    task in the app's event loop sleeps 10 ms at a time; how late it wakes is how long keys and
    scrolling would wait."""
    out: dict[str, float] = {}
    lags: list[float] = []
    done = False

    async def probe() -> None:
        while not done:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    t0 = time.perf_counter()
    app = make_app(run_dir=run)
    async with app.run_test(size=SIZE) as pilot:
        task = asyncio.create_task(probe())
        while not (isinstance(app.screen, DashboardScreen) and app.screen.ready):
            await pilot.pause(0.1)
        out["open_all_s"] = time.perf_counter() - t0
        out["first_paint_s"] = app.screen.first_drawn_at - t0
        done = True
        await task
    out["lag_n"] = len(lags)  # 0: the run was ready before the probe's first wake-up
    lags = sorted(lags) or [0.0]
    out["lag_max_ms"] = lags[-1] * 1e3
    out["lag_p99_ms"] = lags[int(len(lags) * 0.99)] * 1e3
    out["lag_median_ms"] = lags[len(lags) // 2] * 1e3
    return out


async def reopen_in_app(run: Path) -> float:
    """The app already running (runs list shown and read): open the run, until every event is drawn."""
    app = make_app(runs_root=run.parent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        while not getattr(app.screen, "refreshes", 0):
            await pilot.pause(0.05)
        t0 = time.perf_counter()
        app.open_runs([run])
        while not (isinstance(app.screen, DashboardScreen) and app.screen.ready):
            await pilot.pause(0.01)
        return time.perf_counter() - t0


async def bench_app(run: Path, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    app = make_app(run_dir=run)
    async with app.run_test(size=SIZE) as pilot:
        while not (isinstance(app.screen, DashboardScreen) and app.screen.ready):
            await pilot.pause(0.02)
        dash: DashboardScreen = app.screen

        def draw_all() -> float:
            t = time.perf_counter()
            dash._invalidate()  # rebuild every panel's frame (downsampling inputs, EMA, bands)
            for _, panel in dash.panels:
                if panel.display:
                    w, h = panel.size
                    render_plot(panel.frame, w, h)  # the raster a repaint draws
            return time.perf_counter() - t

        warm = []
        for _ in range(repeats * 3):
            dash.action_toggle_ema()
            warm.append(draw_all())
        out["redraw_warm_ms"] = statistics.median(warm) * 1e3

        # live: 1,000 new train events appended by a writer, polled and drawn
        live = []
        with EventWriter(run / "events.jsonl") as w:
            step = int(dash.runs[0].last("train", "step"))
            for r in range(repeats):
                for s in range(step + 1, step + 1001):
                    w.write("train", step=s, tokens=s * 524_288, loss=1.2, lr=3e-4, grad_norm=0.3,
                            tokens_per_s=5e6, dt_ms=100.0, mem_gib=12.5)
                step += 1000
                while dash.runs[0].last("train", "step") < step:  # the loader thread's snapshot
                    await pilot.pause(0.01)
                live.append(draw_all())
        out["redraw_live_ms"] = statistics.median(live) * 1e3
        out["panels"] = sum(1 for _, p in dash.panels if p.display)
    return out


def cold_redraw_ms(run: Path) -> float:
    """First full draw of a loaded run: EMA over 10^6 points and block caches built from scratch."""
    async def go() -> float:
        app = make_app(run_dir=run)
        async with app.run_test(size=SIZE) as pilot:
            while not (isinstance(app.screen, DashboardScreen) and app.screen.ready):
                await pilot.pause(0.02)
            dash = app.screen
            for snap in dash.runs:
                snap.cache.clear()
            dash._tokens.clear()  # else every panel's frame is still current and nothing is rebuilt
            t = time.perf_counter()
            dash._invalidate()
            for _, panel in dash.panels:
                if panel.display:
                    render_plot(panel.frame, *panel.size)
            return (time.perf_counter() - t) * 1e3
    return asyncio.run(go())


# -- trainer with and without the app ------------------------------------------------------------

def tiny_preset(steps: int):
    return default_preset().with_values({
        "model.arch": "gpt", "model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4, "model.dropout": 0.0,
        "data.seq_len": 64, "train.device_batch_size": 8, "train.max_steps": steps, "train.log_every": 5,
        "eval.every": 0, "eval.batches": 2, "sample.every": 0, "checkpoint.every": 0, "diag.every": 0,
        "system.device": "cpu", "system.threads": 1, "data.max_bytes": 300_000, "run.name": "bench"})


def trainer_rate(run_dir: Path) -> float:
    ev = [e for e in read_events(run_dir / "events.jsonl") if e.get("kind") == "train"]
    ev = ev[len(ev) // 5:]  # skip warm-up
    return (ev[-1]["tokens"] - ev[0]["tokens"]) / (ev[-1]["time"] - ev[0]["time"])


def child_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children only: the trainer once waited for
    return r.ru_utime + r.ru_stime


def run_headless(root: Path, steps: int) -> tuple[float, float]:
    """(tokens/s from the trainer's events, the trainer's CPU seconds)."""
    from tuiLM.launch import create_run, spawn_trainer

    run_dir = create_run(tiny_preset(steps), root=root)
    c0 = child_cpu_s()
    proc = spawn_trainer(run_dir)
    proc.wait()
    return trainer_rate(run_dir), child_cpu_s() - c0


def run_attached(root: Path, steps: int) -> tuple[float, float, float]:
    """(tokens/s, the trainer's CPU seconds, the app's CPU seconds meanwhile)."""
    from tuiLM.launch import create_run, spawn_trainer

    run_dir = create_run(tiny_preset(steps), root=root)

    async def go() -> tuple[float, float]:
        app = make_app(run_dir=run_dir, runs_root=root)
        async with app.run_test(size=SIZE) as pilot:
            k0 = child_cpu_s()
            proc = spawn_trainer(run_dir)
            app.watcher.get(run_dir, proc=proc)
            c0 = cpu_s()
            while proc.poll() is None:
                await pilot.pause(0.1)
            return cpu_s() - c0, child_cpu_s() - k0
    ui_cpu, trainer_cpu = asyncio.run(go())
    return trainer_rate(run_dir), trainer_cpu, ui_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trainer-steps", type=int, default=300)
    ap.add_argument("--skip-trainer", action="store_true")
    ap.add_argument("--skip-open", action="store_true", help="only part 3 (the trainer with and without the app)")
    ap.add_argument("--redraw-only", action="store_true",
                    help="only the redraw figures of part 1 (for A/B runs of two checkouts on a busy machine)")
    ap.add_argument("--phase-s", type=float, default=6.0, help="part 3: seconds per attached / detached turn")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.redraw_only:
        bench_redraw(args)
        return
    if not args.skip_open:
        bench_open(args)
    if not args.skip_trainer:
        bench_phases(args)
        bench_trainer(args)


def bench_open(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = make_big_run(Path(tmp), args.events)
        med = statistics.median
        matcher = [read_time(run) for _ in range(args.repeats)]
        per_line = [orjson_columns(run) for _ in range(args.repeats)]
        unchecked = [orjson_columns(run, checks=False) for _ in range(args.repeats)]
        assert matcher[0][1] == per_line[0][1] == unchecked[0][1]
        m, p, u = (med(x[0] for x in v) for v in (matcher, per_line, unchecked))
        bare = med(loads_only(run) for _ in range(args.repeats))
        print(f"read, orjson line by line into columns   {p:6.2f} s   (the contract's type checks, np.fromiter columns)")
        print(f"  ...the same without the type checks    {u:6.2f} s")
        print(f"  ...orjson.loads alone, no columns      {bare:6.2f} s")
        print(f"read, signature matcher into columns     {m:6.2f} s   the matcher is {p / m:.2f}x faster "
              f"({u / m:.2f}x without the checks)")
        caches = [cache_times(run) for _ in range(args.repeats)]
        w, l, s = (med(x[i] for x in caches) for i in range(3))
        print(f"column cache: write ({(run / CACHE).stat().st_size / 1e6:.0f} MB)          {w:6.2f} s")
        print(f"column cache: re-open, loader only       {l:6.2f} s   ratio to a full read {l / m:.3f}")
        print(f"column cache: run summary (runs list)    {s:6.2f} s")
        opens = [asyncio.run(open_app(run)) for _ in range(args.repeats)]
        o = {k: med(x[k] for x in opens) for k in opens[0]}
        print(f"open from the command line, cache left by the trainer: every panel drawn {o['first_paint_s']:5.2f} s, "
              f"every event drawn {o['open_all_s']:5.2f} s ({SIZE[0]}x{SIZE[1]}, app start-up included)")
        print_lag(o, len(opens))
        re = med(asyncio.run(reopen_in_app(run)) for _ in range(args.repeats))
        print(f"re-open in a running app: every event drawn                               {re:5.2f} s")
        small = write_run(Path(tmp) / "small-runs", "small", "mhc")  # 400 steps: the app's own start-up
        small_open = med(asyncio.run(open_app(small))["first_paint_s"] for _ in range(args.repeats))
        print(f"open from the command line, a 400-step mhc run: every panel drawn     {small_open:5.2f} s "
              f"(start-up alone, for comparison)")
        colds = []
        for _ in range(args.repeats):
            (run / CACHE).unlink(missing_ok=True)
            colds.append(asyncio.run(open_app(run)))
        c = {k: med(x[k] for x in colds) for k in colds[0]}
        print(f"open without a cache (killed before any checkpoint): every event drawn {c['open_all_s']:5.2f} s "
              f"(the app writes the cache then)")
        print_lag(c, len(colds))
        print_redraw(run, args.repeats)


def print_lag(o: dict[str, float], opens: int) -> None:
    if not o["lag_n"]:
        print("UI event loop while opening: ready before the probe's first 10 ms wake-up")
        return
    print(f"UI event loop while opening: late by median {o['lag_median_ms']:.1f} ms, p99 {o['lag_p99_ms']:.0f} ms, "
          f"max {o['lag_max_ms']:.0f} ms over {o['lag_n']:.0f} wake-ups (medians over {opens} opens)")


def print_redraw(run: Path, repeats: int) -> None:
    r = asyncio.run(bench_app(run, repeats))
    cold = cold_redraw_ms(run)
    n = r["panels"]
    print(f"redraw, {n} panels shown, cold (EMA + caches)  {cold:6.1f} ms   ({cold / n:.1f} ms a panel)")
    print(f"redraw, {n} panels shown, warm (toggle EMA)    {r['redraw_warm_ms']:6.1f} ms   ({r['redraw_warm_ms'] / n:.1f} ms a panel)")
    print(f"redraw, {n} panels shown, 1,000 new events     {r['redraw_live_ms']:6.1f} ms   ({r['redraw_live_ms'] / n:.1f} ms a panel)")


def bench_redraw(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = make_big_run(Path(tmp), args.events)
        print_redraw(run, args.repeats)


def rate_between(events: list[dict], t0: float, t1: float) -> float | None:
    """Tokens/s of the trainer's own train events stamped in [t0, t1]."""
    ev = [e for e in events if e.get("kind") == "train" and t0 <= e["time"] <= t1]
    if len(ev) < 3:
        return None
    return (ev[-1]["tokens"] - ev[0]["tokens"]) / (ev[-1]["time"] - ev[0]["time"])


def bench_phases(args: argparse.Namespace) -> None:
    """One trainer run, the app attached and detached in turns of ``--phase-s`` seconds.

    Separate runs carry the machine's drift between them (on this shared VM the same run's CPU
    seconds vary by +-20 %); adjacent phases of one run see nearly the same machine. The first
    second of each phase is left out (the app's own start-up is not the steady state)."""
    from tuiLM.launch import create_run, spawn_trainer, stop_trainer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_dir = create_run(tiny_preset(1_000_000), root=root)
        proc = spawn_trainer(run_dir)
        while not any(e.get("kind") == "train" for e in read_events(run_dir / "events.jsonl")):
            time.sleep(0.2)
        time.sleep(2.0)  # warm-up
        windows: list[tuple[str, float, float]] = []

        async def attached(seconds: float) -> None:
            app = make_app(run_dir=run_dir, runs_root=root)
            async with app.run_test(size=SIZE) as pilot:
                app.watcher.get(run_dir, proc=proc)
                t0 = time.time()
                while time.time() - t0 < seconds:
                    await pilot.pause(0.1)

        for i in range(args.repeats):
            for mode in (("headless", "attached") if i % 2 == 0 else ("attached", "headless")):
                t0 = time.time()
                if mode == "attached":
                    asyncio.run(attached(args.phase_s))
                else:
                    time.sleep(args.phase_s)
                windows.append((mode, t0 + 1.0, time.time()))
        control: list[tuple[float, float]] = []  # A/A: the same pairs with the app never attached
        for i in range(args.repeats):
            pair = []
            for _ in range(2):
                t0 = time.time()
                time.sleep(args.phase_s)
                pair.append((t0 + 1.0, time.time()))
            control.append((pair[0][0], pair[0][1], pair[1][0], pair[1][1]))
        stop_trainer(proc, wait=30)
        events = read_events(run_dir / "events.jsonl")
    rates = [(mode, rate_between(events, a, b)) for mode, a, b in windows]
    pairs = []
    for i in range(0, len(rates) - 1, 2):
        (m1, r1), (_, r2) = rates[i], rates[i + 1]
        if r1 and r2:
            a, h = (r1, r2) if m1 == "attached" else (r2, r1)
            pairs.append(a / h)
            print(f"pair {i // 2 + 1}: headless {h:10,.0f} tok/s  attached {a:10,.0f} tok/s  ratio {a / h:.3f}")
    aa = sorted(r2 / r1 for r1, r2 in ((rate_between(events, a, b), rate_between(events, c, d))
                                       for a, b, c, d in control) if r1 and r2)
    if aa:
        print(f"A/A control, headless/headless in the same turns: per pair median {statistics.median(aa):.3f} "
              f"range {aa[0]:.3f}-{aa[-1]:.3f} ({len(aa)} pairs): the machine's own noise")
    pairs.sort()
    h = statistics.median(r for m, r in rates if m == "headless" and r)
    a = statistics.median(r for m, r in rates if m == "attached" and r)
    print(f"one run, app attached/detached in {args.phase_s:.0f} s turns: median tok/s headless {h:,.0f} "
          f"attached {a:,.0f} ratio {a / h:.3f}; per pair median {statistics.median(pairs):.3f} "
          f"range {pairs[0]:.3f}-{pairs[-1]:.3f} ({len(pairs)} pairs)")


def bench_trainer(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        headless, attached, ui_cpu, wall, cpu_h, cpu_a = [], [], [], [], [], []
        for i in range(args.repeats):
            for mode in (("headless", "attached") if i % 2 == 0 else ("attached", "headless")):
                t = time.perf_counter()
                if mode == "headless":
                    rate, tcpu = run_headless(root, args.trainer_steps)
                    headless.append(rate)
                    cpu_h.append(tcpu)
                else:
                    rate, tcpu, cpu = run_attached(root, args.trainer_steps)
                    attached.append(rate)
                    cpu_a.append(tcpu)
                    ui_cpu.append(cpu)
                    wall.append(time.perf_counter() - t)
                print(f"repeat {i + 1} {mode:8s} {rate:10,.0f} tok/s   trainer CPU {tcpu:5.2f} s")
        h, a = statistics.median(headless), statistics.median(attached)
        pairs = sorted(x / y for x, y in zip(attached, headless))
        print(f"trainer tokens/s median: headless {h:,.0f}  with the app attached {a:,.0f}  "
              f"ratio {a / h:.3f} ({(a / h - 1) * 100:+.1f} %)")
        print(f"ratio attached/headless within each repeat: median {statistics.median(pairs):.3f}, "
              f"range {pairs[0]:.3f}-{pairs[-1]:.3f}")
        ch, ca = statistics.median(cpu_h), statistics.median(cpu_a)
        print(f"trainer CPU seconds for the same run, median: headless {ch:.2f}  attached {ca:.2f}  ratio {ca / ch:.3f}")
        print(f"app CPU while attached: {statistics.median(ui_cpu):.2f} s over ~{statistics.median(wall):.0f} s "
              f"({statistics.median(ui_cpu) / statistics.median(wall) * 100:.1f} % of one core)")


if __name__ == "__main__":
    main()
