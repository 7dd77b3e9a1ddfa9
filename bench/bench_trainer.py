"""tuiLM's training loop against a plain PyTorch loop of the same model, batch and optimizer.

    python bench/bench_trainer.py [--steps 200] [--repeats 3] [--d-model 128] [--device cpu] [--threads 1]

Both run in this process, interleaved (plain, tuiLM, plain, tuiLM, ...) so that load from elsewhere on
the machine hits both alike; the median tokens/s of each is compared, per wall-clock second and per
CPU second of this process (the CPU figure is the steadier one on a machine shared with other work). The tuiLM figure is measured
from its own train events (between the event after warm-up and the last one), so it includes
everything the loop does per step: schedule, batch drawing from the checkpointable generator,
non-finite check, gradient norm, events, stdout lines and model diagnostics (diag.every = 25). The
final evaluation and checkpoint come after the last train event and are not counted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tuiLM.config.load import default_preset  # noqa: E402
from tuiLM.events import EventWriter  # noqa: E402
from tuiLM.launch import create_run  # noqa: E402
from tuiLM.models import build_model  # noqa: E402
from tuiLM.runs import EVENTS  # noqa: E402
from tuiLM.train.data import load_corpus  # noqa: E402
from tuiLM.train.trainer import Trainer  # noqa: E402

WARMUP = 10  # steps excluded from both measurements


def make(args: argparse.Namespace):
    return default_preset().with_values({
        "model.arch": "gpt", "model.n_layers": args.layers, "model.d_model": args.d_model, "model.n_heads": 4,
        "model.dropout": 0.0, "model.activation": "relu2", "model.norm": "rmsnorm",
        "data.max_bytes": 2_000_000, "data.seq_len": args.seq_len, "train.device_batch_size": args.batch,
        "train.max_steps": args.steps, "train.log_every": 10, "train.grad_clip": 1.0, "optim.name": "adamw",
        "optim.lr": 3e-3, "schedule.decay": "constant", "eval.every": 0, "eval.batches": 1, "sample.every": 0,
        "checkpoint.every": 0, "diag.every": 25, "system.device": args.device, "system.threads": args.threads})


def tuilm_tokens_per_s(preset, root: Path) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) between the train event after warm-up and the last."""
    run_dir = create_run(preset, name="bench", root=root)
    marks: list[tuple[int, float, float]] = []
    with EventWriter(run_dir / EVENTS) as writer, redirect_stdout(io.StringIO()):
        trainer = Trainer(run_dir, preset, writer=writer)
        emit = trainer.emit

        def timed_emit(kind, **fields):
            emit(kind, **fields)
            if kind == "train" and fields["step"] >= WARMUP:
                marks.append((fields["tokens"], time.perf_counter(), time.process_time()))

        trainer.emit = timed_emit
        trainer.setup()
        trainer.train()
    (tok0, wall0, cpu0), (tok1, wall1, cpu1) = marks[0], marks[-1]
    return (tok1 - tok0) / (wall1 - wall0), (tok1 - tok0) / (cpu1 - cpu0)


def plain_tokens_per_s(preset, data: torch.Tensor) -> tuple[float, float]:
    """The minimal loop: random windows, forward, backward, clip, AdamW step."""
    device = torch.device(preset.system.device)
    B, T = preset.train.device_batch_size, preset.data.seq_len
    torch.manual_seed(preset.run.seed)
    model = build_model(preset.model, 256, T).to(device)
    o = preset.optim
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                            weight_decay=o.weight_decay, fused=True)
    gen = torch.Generator().manual_seed(0)
    offsets = torch.arange(T + 1)
    wall0 = cpu0 = 0.0
    for step in range(preset.train.max_steps):
        if step == WARMUP:
            wall0, cpu0 = time.perf_counter(), time.process_time()
        idx = torch.randint(len(data) - T - 1, (B,), generator=gen)[:, None] + offsets
        batch = data[idx].long().to(device)
        _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), preset.train.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # a real loop looks at its loss; tuiLM syncs on it once per step too
    tokens = (preset.train.max_steps - WARMUP) * B * T
    return tokens / (time.perf_counter() - wall0), tokens / (time.process_time() - cpu0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = make(args)
    corpus = load_corpus(preset.data)
    data = torch.from_numpy(np.asarray(corpus.train[0]).copy())
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            plain.append(plain_tokens_per_s(preset, data))
            ours.append(tuilm_tokens_per_s(preset, Path(tmp)))
            print(f"repeat {r + 1}: wall tok/s plain {plain[-1][0]:,.0f} tuiLM {ours[-1][0]:,.0f} | "
                  f"CPU-time tok/s plain {plain[-1][1]:,.0f} tuiLM {ours[-1][1]:,.0f}", flush=True)
    print(f"model gpt d_model={args.d_model} layers={args.layers} seq_len={args.seq_len} batch={args.batch} "
          f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"steps={args.steps} (first {WARMUP} excluded) repeats={args.repeats}")
    for i, clock in enumerate(("wall", "CPU-time")):
        p, t = statistics.median(x[i] for x in plain), statistics.median(x[i] for x in ours)
        print(f"median {clock} tokens/s: plain {p:,.0f}  tuiLM {t:,.0f}  ratio tuiLM/plain {t / p:.3f}  "
              f"overhead {100 * (1 - t / p):+.1f} %")


if __name__ == "__main__":
    main()
