"""Analytic and exact memory estimates against a real CPU step, across architectures and sizes.

For each configuration: the analytic estimate (tuiLM.estimate, pure Python, for device=cpu and the
dtype), the exact count (the real model under FakeTensorMode) and the measurement (one real CPU step,
tensors saved for backward counted with autograd hooks, each storage once, parameters excluded), with
the ratios analytic / measured and exact / measured. Full-size presets are added with exact only (a
real step would need tens of GiB). Prints one table; run as

    python bench/bench_estimator.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuiLM.config.load import default_preset, load  # noqa: E402
from tuiLM.estimate import estimate  # noqa: E402

GPT = {"model.arch": "gpt", "model.activation": "relu2", "model.norm": "rmsnorm", "model.dropout": 0.0}
STATIC = {"model.arch": "mhc", "model.mhc_streams": 4, "model.mhc_mode": "static", "model.dropout": 0.0}
DYNAMIC = {**STATIC, "model.mhc_mode": "dynamic", "model.mhc_gate": True}
BDH = {"model.arch": "bdh", "model.dropout": 0.1}

CONFIGS = [
    ("gpt small", {**GPT, "model.n_layers": 2, "model.d_model": 128, "model.n_heads": 4,
                   "data.seq_len": 128, "train.device_batch_size": 8}),
    ("gpt medium+dropout", {**GPT, "model.activation": "gelu", "model.norm": "layernorm", "model.dropout": 0.1,
                            "model.n_layers": 4, "model.d_model": 256, "model.n_heads": 8,
                            "data.seq_len": 256, "train.device_batch_size": 8}),
    ("mhc static small", {**STATIC, "model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4,
                          "data.seq_len": 64, "train.device_batch_size": 8}),
    ("mhc static medium", {**STATIC, "model.n_layers": 4, "model.d_model": 128, "model.n_heads": 4,
                           "data.seq_len": 128, "train.device_batch_size": 8}),
    ("mhc dynamic small", {**DYNAMIC, "model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4,
                           "data.seq_len": 64, "train.device_batch_size": 8}),
    ("mhc dynamic medium", {**DYNAMIC, "model.n_layers": 4, "model.d_model": 128, "model.n_heads": 4,
                            "data.seq_len": 128, "train.device_batch_size": 8}),
    ("bdh small", {**BDH, "model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4, "model.bdh_mult": 16,
                   "data.seq_len": 64, "train.device_batch_size": 4}),
    ("bdh medium", {**BDH, "model.n_layers": 4, "model.d_model": 128, "model.n_heads": 4, "model.bdh_mult": 32,
                    "data.seq_len": 128, "train.device_batch_size": 8}),
]
FULL_SIZE = ["bdh-default", "golf-baseline"]


def mib(n: float) -> str:
    return f"{n / 2**20:10.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16 (CPU autocast)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--no-full-size", action="store_true", help="skip the exact-only full-size presets")
    args = ap.parse_args()

    import torch

    from tuiLM.estimate.exact import exact, measure

    torch.set_num_threads(args.threads)
    dtypes = args.dtypes.split(",")
    print(f"torch {torch.__version__}, {args.threads} thread(s); saved-for-backward bytes in MiB")
    print(f"{'config':22s} {'dtype':5s} {'params':>10s} {'analytic':>10s} {'exact':>10s} {'measured':>10s} "
          f"{'an/meas':>8s} {'ex/meas':>8s} {'t_an ms':>8s} {'t_ex s':>7s} {'t_me s':>7s}")
    worst = 0.0
    for name, changes in CONFIGS:
        preset = default_preset().with_values({**changes, "system.device": "cpu"})
        for dtype in dtypes:
            t0 = time.perf_counter()
            an = estimate(preset, device="cpu", dtype=dtype)
            t1 = time.perf_counter()
            ex = exact(preset, dtype=dtype)
            t2 = time.perf_counter()
            me = measure(preset, dtype=dtype)
            t3 = time.perf_counter()
            worst = max(worst, abs(an.saved_bytes / me.saved - 1))
            print(f"{name:22s} {dtype:5s} {an.params:10,d} {mib(an.saved_bytes)} {mib(ex.saved)} {mib(me.saved)} "
                  f"{an.saved_bytes / me.saved:8.4f} {ex.saved / me.saved:8.4f} {1e3 * (t1 - t0):8.2f} "
                  f"{t2 - t1:7.2f} {t3 - t2:7.2f}")
    print(f"worst |analytic / measured - 1| = {worst:.4%}")
    if args.no_full_size:
        return
    print("\nfull-size presets, exact only (a real step would not fit this machine)")
    print(f"{'preset':22s} {'dtype':5s} {'params':>12s} {'analytic GiB':>13s} {'exact GiB':>10s} {'an/ex':>7s} "
          f"{'t_ex s':>7s}")
    for name in FULL_SIZE:
        path = ROOT / "presets" / f"{name}.toml"
        if not path.exists():
            print(f"{name:22s} (no preset file)")
            continue
        preset = load(path)[0]
        t = time.perf_counter()
        ex = exact(preset, dtype="bf16")
        dt = time.perf_counter() - t
        an = estimate(preset, device="cpu", dtype="bf16")
        print(f"{name:22s} {'bf16':5s} {an.params:12,d} {an.saved_bytes / 2**30:13.3f} {ex.saved / 2**30:10.3f} "
              f"{an.saved_bytes / ex.saved:7.4f} {dt:7.2f}")
        cuda = estimate(preset)
        print(f"{'':22s} CUDA bf16 analytic: saved {cuda.saved_bytes / 2**30:.2f} GiB, peak total "
              f"{cuda.total_bytes / 2**30:.2f} GiB (with {cuda.parts['overhead'] / 2**30:.2f} GiB overhead)")


if __name__ == "__main__":
    main()
