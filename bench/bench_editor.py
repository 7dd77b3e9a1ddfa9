"""Preset editor keystroke latency: typing into a number field, headless at 120x40.

    python bench/bench_editor.py [--preset presets/golf-baseline.toml] [--keys 40] [--profile]

Per keystroke: wall and CPU time of ``pilot.press(key)`` + ``pilot.pause()`` until the app is idle
(the key handled, the message chain run, the screen refreshed) in model.d_model of the preset.
"toggle" types 3, 38, 384, 38, 380...: the problem appears and disappears; "steady" types into an
odd (invalid) value: only the message's text changes. A bare Textual app with one Input is timed
the same way for reference. Pilot itself waits on every widget of the screen after each key (a
callback per widget), so part of the editor's figure is the harness; CPU time is the steadier
number on a shared machine (wall includes Pilot's fixed waits, ~80 ms per key even for the bare app).
The second block sends each key without Pilot's waits (``App._press_keys``: the key delivered and
handled) and charges the process CPU of the 100 ms after it (the refresh timer repaints within it;
the estimate's 150 ms debounce fires after the last key), as typing at 10 keys/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual.app import App  # noqa: E402
from textual.widgets import Input  # noqa: E402

from tuiLM.tui.app import make_app  # noqa: E402

SIZE = (120, 40)
RAW = False
# "toggle": 384 is valid, 38 / 380 / 3 are not (d_model % n_heads): problems come and go
TOGGLE = ["backspace", "backspace", "backspace", "3", "8", "4", "backspace", "0"]
# "steady": an odd d_model stays invalid; only the message's number changes
STEADY = ["1", "1", "1", "backspace", "backspace", "backspace"]


async def type_keys(app, pilot, inp: Input, n: int, keys: list[str] = TOGGLE) -> tuple[list[float], list[float]]:
    inp.focus()
    await pilot.pause()
    inp.action_end()
    walls, cpus = [], []
    for i in range(n):
        key = keys[i % len(keys)]
        t, c = time.perf_counter(), time.process_time()
        if RAW:  # the key alone, then 100 ms of the app's own time (its refresh timer fires within it)
            await app._press_keys([key])
            walls.append(time.perf_counter() - t)
            await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - t)))
        else:
            await pilot.press(key)
            await pilot.pause()
            walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    await pilot.pause(0.3)  # let the debounced work finish inside the app
    return walls, cpus


async def bench_editor(preset: Path, n: int, profile: bool, keys: list[str]) -> tuple[list[float], list[float]]:
    app = make_app(preset_path=preset, runs_root=Path("/nonexistent-runs"))
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        while editor.estimate is None and not editor.estimate_error:
            await pilot.pause(0.05)
        inp = editor.query_one("#f-model--d_model", Input)
        if keys is STEADY:
            inp.value = "511"
        await type_keys(app, pilot, inp, 8, keys)  # warm-up
        if profile:
            from pyinstrument import Profiler
            prof = Profiler(interval=0.0005, async_mode="disabled")
            prof.start()
        out = await type_keys(app, pilot, inp, n, keys)
        if profile:
            prof.stop()
            print(prof.output_text(unicode=False, color=False, show_all=False))
    return out


class Bare(App):
    def compose(self):
        yield Input("384", id="x")


async def bench_bare(n: int) -> tuple[list[float], list[float]]:
    app = Bare()
    async with app.run_test(size=SIZE) as pilot:
        await type_keys(app, pilot, app.query_one(Input), 8)
        return await type_keys(app, pilot, app.query_one(Input), n)


def report(name: str, walls: list[float], cpus: list[float]) -> None:  # noqa: D103
    walls_ms, cpus_ms = sorted(w * 1e3 for w in walls), sorted(c * 1e3 for c in cpus)
    p90 = walls_ms[int(0.9 * (len(walls_ms) - 1))]
    print(f"{name:28s} wall median {statistics.median(walls_ms):6.1f} ms  p90 {p90:6.1f} ms  "
          f"max {walls_ms[-1]:6.1f} ms   cpu median {statistics.median(cpus_ms):6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", type=Path, default=ROOT / "presets" / "golf-baseline.toml")
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    import os
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    global RAW
    for RAW in (False, True):
        how = "keys 100 ms apart" if RAW else "Pilot press + pause"
        print(how)
        report("  bare Textual app, one Input", *asyncio.run(bench_bare(args.keys)))
        for name, keys in (("toggle", TOGGLE), ("steady", STEADY)):
            report(f"  editor, {name}", *asyncio.run(bench_editor(args.preset, args.keys, args.profile, keys)))


if __name__ == "__main__":
    main()
