"""Own plot widget vs textual-plot vs textual-plotext: the same panels, and the redraw cost.

Not a dependency check: textual-plot and textual-plotext are installed only to run this comparison
(pip install textual-plot textual-plotext). Each library draws the dashboard's two hardest panels
from a 10^6-step run:
  loss     10^6 raw train points (spike at 1/3), their EMA, and 1,000 eval points with markers
  H_res    20,000 diagnostics on the fixed range [1/n, 1] with the mHC bands
The libraries get the series after our min/max downsampling (2 points per plot column, spikes kept),
which is what they would be fed in the dashboard; ours also draws straight from the 10^6 points
(its block cache) to show what the whole path costs.

Redraw cost: the same Textual app hosts one widget at a time (78x14 cells); each redraw replaces the
widget's data and waits for the screen to be painted (``pilot.pause()``), so Textual's own
compositing is inside every figure. Median of N redraws, ratios measured in the same run.

    python bench/bench_plots.py [--n 30] [--png DIR]

--png writes the same panels drawn by each library as SVG and PNG (rsvg-convert) into DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import Vertical  # noqa: E402
from textual.widgets import Static  # noqa: E402

from tuiLM.tui.metrics import BY_KEY  # noqa: E402
from tuiLM.tui.series import BlockCache, ema, minmax_downsample  # noqa: E402
from tuiLM.tui.widgets.plot import Frame, PlotPanel, Trace  # noqa: E402

N_POINTS = 1_000_000
W, H = 78, 14


def data():
    rng = np.random.default_rng(0)
    x = np.arange(1, N_POINTS + 1, dtype=float)
    loss = 1.2 + 4.0 * np.exp(-x / (N_POINTS / 20)) + 0.1 * rng.standard_normal(N_POINTS)
    loss[N_POINTS // 3] += 5.0
    smooth, _ = ema(loss, 0.99, steps=x)
    ex = x[999::1000]
    ev = 1.3 + 4.0 * np.exp(-ex / (N_POINTS / 20))
    dx = x[49::50]
    hres = 0.5 + 0.45 * np.exp(-dx / (N_POINTS / 8)) + 1e-4 * rng.standard_normal(dx.size)
    return {"loss": (x, loss, smooth, ex, ev), "hres": (dx, hres)}


def down(x, y, cols):
    """Min/max buckets as a polyline (lo then hi per column): what a library would be fed."""
    b = minmax_downsample(x, y, float(x[0]), float(x[-1]), cols)
    step = (x[-1] - x[0]) / cols
    xs = np.repeat(x[0] + (b.cols + 0.5) * step, 2)
    ys = np.empty(2 * len(b))
    ys[0::2], ys[1::2] = b.lo, b.hi
    return xs, ys


def own_frames(d, *, blocks: bool):
    x, loss, smooth, ex, ev = d["loss"]
    dx, hres = d["hres"]
    cache = {}

    def bc(name, xx, yy):
        if not blocks:
            return None
        c = cache.setdefault(name, BlockCache())
        c.update(xx, yy, (0,))
        return c

    settings = {"model": {"mhc_streams": 4}}
    spec = BY_KEY["H_res_diag_mean"]
    return {
        "loss": Frame([Trace(x, loss, "#4ea1ff", "train", bc("raw", x, loss), dim=True),
                       Trace(x, smooth, "#4ea1ff", "train", bc("ema", x, smooth)),
                       Trace(ex, ev, "#ff9f43", "val", markers=True)]),
        "hres": Frame([Trace(dx, hres, "#4ea1ff", "used")], bands=spec.bands(settings), yrange=spec.yrange(settings)),
    }


class Host(App):
    CSS = "Vertical { height: auto; } .cap { height: 1; color: $text-muted; } .plot { height: %d; width: %d; }" % (H, W)

    def compose(self) -> ComposeResult:
        yield Vertical(id="host")


def make_widget(lib: str, panel: str):
    if lib == "own":
        w = PlotPanel(panel)
    elif lib == "textual-plot":
        from textual_plot import PlotWidget
        w = PlotWidget(allow_pan_and_zoom=False)
    else:
        from textual_plotext import PlotextPlot
        w = PlotextPlot()
    w.add_class("plot")
    return w


def feed(lib: str, w, panel: str, d, frames, cols: int) -> None:
    """Replace the widget's data with the panel's series (and ask it to redraw)."""
    if lib == "own":
        w.set_frame(Frame(**{**frames[panel].__dict__}))  # a new frame object: the cache misses
        return
    if panel == "loss":
        x, loss, smooth, ex, ev = d["loss"]
        series = [(*down(x, loss, cols), "#2f5f8f", "raw"), (*down(x, smooth, cols), "#4ea1ff", "EMA"),
                  (ex, ev, "#ff9f43", "val")]
    else:
        dx, hres = d["hres"]
        series = [(*down(dx, hres, cols), "#4ea1ff", "used")]
    if lib == "textual-plot":
        from textual_plot import HiResMode
        w.clear()
        for xs, ys, color, label in series:
            if label == "val":
                w.scatter(xs, ys, marker_style=color, label=label)
            w.plot(xs, ys, line_style=color, hires_mode=HiResMode.BRAILLE, label=label)
        if panel == "hres":
            w.set_ylimits(0.25, 1.0)
        w.show_legend()
    else:
        plt = w.plt
        plt.clear_data()
        plt.clear_figure()
        plt.theme("dark")
        for xs, ys, color, label in series:
            plt.plot(xs.tolist(), ys.tolist(), marker="braille", label=label)
        if panel == "hres":
            plt.ylim(0.25, 1.0)
        w.refresh()


async def measure(n: int, png: Path | None) -> dict:
    d = data()
    frames_blocks = own_frames(d, blocks=True)
    frames_down = {}
    cols = 2 * (W - 9)
    x, loss, smooth, ex, ev = d["loss"]
    frames_down["loss"] = Frame([Trace(*down(x, loss, cols), "#4ea1ff", "train", dim=True),
                                 Trace(*down(x, smooth, cols), "#4ea1ff", "train"),
                                 Trace(ex, ev, "#ff9f43", "val", markers=True)])
    frames_down["hres"] = Frame(frames_blocks["hres"].traces[0:0] + [Trace(*down(*d["hres"], cols), "#4ea1ff")],
                                bands=frames_blocks["hres"].bands, yrange=frames_blocks["hres"].yrange)
    results: dict = {}
    app = Host()
    async with app.run_test(size=(W + 2, 2 * (H + 1) + 2)) as pilot:
        host = app.query_one("#host")
        for lib, frames in (("own", frames_blocks), ("own (fed downsampled)", frames_down),
                            ("textual-plot", None), ("textual-plotext", None)):
            base = "own" if lib.startswith("own") else lib
            await host.remove_children()
            widgets = {}
            for panel in ("loss", "hres"):
                await host.mount(Static(f"{lib}: {panel}", classes="cap"))
                widgets[panel] = make_widget(base, panel)
                await host.mount(widgets[panel])
            await pilot.pause(0.2)
            for panel in ("loss", "hres"):
                feed(base, widgets[panel], panel, d, frames, cols)
            await pilot.pause(0.3)
            if png is not None and lib != "own (fed downsampled)":
                name = base.replace(" ", "-")
                app.save_screenshot(f"{name}.svg", path=str(png))
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                for panel in ("loss", "hres"):
                    feed(base, widgets[panel], panel, d, frames, cols)
                await pilot.pause()
                times.append(time.perf_counter() - t0)
            results[lib] = statistics.median(times)
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args()
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
    res = asyncio.run(measure(args.n, args.png))
    own = res["own"]
    print(f"redraw of two panels ({W}x{H} cells each), 10^6 train points + EMA + 1,000 evals and 20,000 "
          f"diagnostics; median of {args.n}, ratio to our widget:")
    for lib, t in res.items():
        print(f"  {lib:24s} {t * 1000:8.1f} ms   x{t / own:.2f}")
    if args.png and shutil.which("rsvg-convert"):
        for svg in sorted(args.png.glob("*.svg")):
            fixed = svg.with_suffix(".fixed.svg")
            # rsvg ignores textLength: plain spaces with xml:space=preserve keep the columns aligned
            fixed.write_text(svg.read_text().replace("&#160;", " ").replace("<svg ", '<svg xml:space="preserve" ', 1))
            subprocess.run(["rsvg-convert", str(fixed), "-o", str(svg.with_suffix(".png"))], check=True)
            fixed.unlink()
            print(f"  wrote {svg.with_suffix('.png')}")


if __name__ == "__main__":
    main()
