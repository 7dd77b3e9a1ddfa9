"""Step time of static and dynamic mHC against the plain GPT of the same backbone.

    python bench/bench_mhc.py [--layers 4] [--d-model 128] [--seq-len 128] [--batch 8] [--streams 4]
                              [--steps 20] [--warmup 5] [--repeats 5] [--threads 1] [--device cpu]

One step = forward, backward and an AdamW step on a fixed random batch. The three models run in
this process, interleaved (gpt, static, dynamic, gpt, ...; the order rotates every repeat) so that
load from elsewhere on the machine hits them alike. Each step is timed on its own, after warm-up
steps per model; the median over all timed steps is reported, per wall-clock second and per CPU
second of this process (the CPU figure is the steadier one on a shared machine; on CUDA only the
wall figure means anything). Ratios are against the plain GPT.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tuiLM.config.load import default_preset  # noqa: E402
from tuiLM.models import build_model  # noqa: E402

VOCAB = 256


def model_section(args: argparse.Namespace, arch: str, mode: str = "static"):
    return default_preset().with_values({
        "model.arch": arch, "model.n_layers": args.layers, "model.d_model": args.d_model,
        "model.n_heads": args.heads, "model.dropout": 0.0, "model.activation": "relu2",
        "model.norm": "rmsnorm", "model.mhc_streams": args.streams, "model.mhc_mode": mode,
    }).model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model per repeat")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per model before the first repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    variants = {
        "gpt": model_section(args, "gpt"),
        "mhc-static": model_section(args, "mhc", "static"),
        "mhc-dynamic": model_section(args, "mhc", "dynamic"),
    }
    models, opts = {}, {}
    for name, section in variants.items():
        models[name] = build_model(section, VOCAB, args.seq_len).to(device).train()
        opts[name] = torch.optim.AdamW(models[name].parameters(), lr=1e-3)
    x = torch.randint(0, VOCAB, (args.batch, args.seq_len), device=device)
    y = torch.randint(0, VOCAB, (args.batch, args.seq_len), device=device)

    def step(name: str) -> tuple[float, float]:
        model, opt = models[name], opts[name]
        sync()
        w0, c0 = time.perf_counter(), time.process_time()
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        return time.perf_counter() - w0, time.process_time() - c0

    for name in models:
        for _ in range(args.warmup):
            step(name)
    wall: dict[str, list[float]] = {n: [] for n in models}
    cpu: dict[str, list[float]] = {n: [] for n in models}
    names = list(models)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            for _ in range(args.steps):
                w, c = step(name)
                wall[name].append(w)
                cpu[name].append(c)

    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"{args.layers} layers, d_model {args.d_model}, {args.heads} heads, relu2, RMSNorm, "
          f"seq_len {args.seq_len}, batch {args.batch}, n = {args.streams} streams, "
          f"{args.repeats} x {args.steps} timed steps per model")
    base_w = statistics.median(wall["gpt"])
    base_c = statistics.median(cpu["gpt"])
    print(f"{'model':<12} {'params':>10} {'wall ms':>9} {'ratio':>6} {'cpu ms':>9} {'ratio':>6}")
    for name in names:
        mw, mc = statistics.median(wall[name]), statistics.median(cpu[name])
        params = sum(p.numel() for p in models[name].parameters())
        print(f"{name:<12} {params:>10,} {mw * 1e3:>9.1f} {mw / base_w:>6.2f} {mc * 1e3:>9.1f} {mc / base_c:>6.2f}")


if __name__ == "__main__":
    main()
