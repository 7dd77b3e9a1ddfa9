"""What system metrics and the live TensorBoard mirror cost the training loop, measured in one run.

    python bench/bench_sysmetrics.py [--rounds 12] [--block 40] [--log-every 1] [--d-model 128] [--device cpu]

One Trainer in this process (bench_trainer.py's GPT: d_model 128, 2 layers, seq_len 128, batch 16, one
torch thread) trains in blocks of ``--block`` steps. Each round runs four blocks, in an order that
rotates from round to round:

  off       train events without system metrics or FLOPs/MFU, written to events.jsonl only
  sys       + Trainer.perf_fields (psutil process/host sample, FLOPs/s, MFU) in every train event
  sys+tb    + the same events mirrored live by the TensorBoard sink (its thread writes event files)
  off'      off again: the A/A control, i.e. what the machine's own noise does to the same blocks

The loop around them is the trainer's (Trainer.train_step, then the train event through Trainer.emit
every ``--log-every`` steps); only eval, samples and checkpoints are left out. Ratios are taken within
a round (adjacent blocks see nearly the same machine), per wall second and per CPU second of this
process (the sink's thread included). ``--log-every 1`` is the worst case: the default preset logs
every 10 steps, so the per-event cost is spread 10x thinner there.

It also times the pieces directly (median over many calls), as a share of one training step of the
same run: one SystemSampler.sample() and one put() into the sink (what the loop pays), and one train
event written to TensorBoard by the sink's thread (TBWriter.write: CPU the thread spends, on another
core when there is one). These resolve far below the A/A noise. ``--rounds 0`` times only these.
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

import torch  # noqa: E402

from tuiLM.config.load import default_preset  # noqa: E402
from tuiLM.events import EventWriter  # noqa: E402
from tuiLM.export import MirroredWriter, TBWriter, TensorBoardSink, preset_hparams  # noqa: E402
from tuiLM.launch import create_run  # noqa: E402
from tuiLM.runs import EVENTS  # noqa: E402
from tuiLM.train.sysmetrics import SystemSampler  # noqa: E402
from tuiLM.train.trainer import Trainer  # noqa: E402

MODES = ("off", "sys", "sys+tb", "off'")


def make(args: argparse.Namespace):
    return default_preset().with_values({
        "model.arch": "gpt", "model.n_layers": args.layers, "model.d_model": args.d_model, "model.n_heads": 4,
        "model.dropout": 0.0, "model.activation": "relu2", "model.norm": "rmsnorm",
        "data.max_bytes": 2_000_000, "data.seq_len": args.seq_len, "train.device_batch_size": args.batch,
        "train.max_steps": 10_000_000, "train.log_every": args.log_every, "optim.lr": 3e-3,
        "schedule.decay": "constant", "eval.every": 0, "sample.every": 0, "checkpoint.every": 0, "diag.every": 0,
        "system.device": args.device, "system.threads": args.threads,
        "system.peak_tflops": 1.0 if args.device == "cpu" else 0.0})


def block(trainer: Trainer, steps: int, log_every: int, with_sys: bool) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) of ``steps`` steps with train events."""
    sampler = trainer.sampler_sys
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    win_tokens, win_time = 0, 0.0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        t0 = time.perf_counter()
        loss, norm, _ = trainer.train_step()
        win_time += time.perf_counter() - t0
        win_tokens += trainer.tokens_per_step
        if trainer.step % log_every == 0:
            tps = win_tokens / win_time
            trainer.sampler_sys = sampler if with_sys else None
            flops_per_token, trainer.flops_per_token = trainer.flops_per_token, (trainer.flops_per_token
                                                                                  if with_sys else 0)
            extra = trainer.perf_fields(tps)
            trainer.flops_per_token = flops_per_token
            trainer.emit("train", step=trainer.step, tokens=trainer.tokens, loss=loss, lr=1e-3, grad_norm=norm,
                         tokens_per_s=tps, dt_ms=1000 * win_time, mem_gib=0.0, **extra)
            win_tokens, win_time = 0, 0.0
    trainer.sampler_sys = sampler
    sync()
    tokens = steps * trainer.tokens_per_step
    return tokens / (time.perf_counter() - wall0), tokens / (time.process_time() - cpu0)


def median_us(fn, n: int = 2000) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--block", type=int, default=40, help="steps per block")
    ap.add_argument("--log-every", type=int, default=1)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: NVML and allocator fields too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = make(args)
    with tempfile.TemporaryDirectory() as tmp, redirect_stdout(io.StringIO()) as quiet:
        root = Path(tmp)
        run_dir = create_run(preset, name="bench", root=root)
        events = EventWriter(run_dir / EVENTS)
        sink = TensorBoardSink(root / "tb" / run_dir.name, hparams=preset_hparams(run_dir))
        plain_trainer_writer, mirrored = events, MirroredWriter(events, sink)
        trainer = Trainer(run_dir, preset, writer=mirrored)
        trainer.setup()
        trainer.run_start_event()  # through the mirror: the sink opens its files here
        trainer.writer = plain_trainer_writer
        block(trainer, 20, args.log_every, True)  # warm-up
        results: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
        for r in range(args.rounds):
            order = MODES[r % 4:] + MODES[:r % 4]
            for mode in order:
                trainer.writer = mirrored if mode == "sys+tb" else plain_trainer_writer
                results[mode].append(block(trainer, args.block, args.log_every, mode in ("sys", "sys+tb")))
            print(f"round {r + 1}: " + "  ".join(f"{m} {results[m][-1][0]:,.0f}" for m in MODES), file=sys.stderr,
                  flush=True)
        # the pieces on their own, against the step time of this run
        if not results["off"]:
            results["off"].append(block(trainer, args.block, args.log_every, False))
        step_s = 1 / statistics.median(x[0] for x in results["off"]) * trainer.tokens_per_step
        sampler = SystemSampler(trainer.device)
        sample_us = median_us(sampler.sample)
        ev = {"v": 1, "kind": "train", "time": time.time(), "step": 1, "tokens": 2048, "loss": 1.0, "lr": 1e-3,
              "grad_norm": 1.0, "tokens_per_s": 1.0, "dt_ms": 1.0, "mem_gib": 0.3, "flops_per_s": 1e9, "mfu": 0.01,
              **sampler.sample()}
        put_us = median_us(lambda: sink.put(ev), n=1000)
        from tensorboardX import SummaryWriter

        tbw = TBWriter(SummaryWriter(logdir=str(root / "tb-direct"), flush_secs=5, max_queue=100), {})
        counter = iter(range(10**9))
        write_us = median_us(lambda: tbw.write({**ev, "step": next(counter)}), n=500)
        tbw.w.close()
        trainer.writer = mirrored
        mirrored.close()
        dropped, error = sink.dropped, sink.error
    del quiet
    print(f"model gpt d_model={args.d_model} layers={args.layers} seq_len={args.seq_len} batch={args.batch} "
          f"{args.device} "
          f"torch={torch.__version__} threads={torch.get_num_threads()} log_every={args.log_every} "
          f"block={args.block} steps rounds={args.rounds}; sink dropped {dropped} events, error {error}")
    print(f"one step {1000 * step_s:.2f} ms; SystemSampler.sample() {sample_us:.0f} us "
          f"({100 * sample_us / 1e6 / step_s:.3f} % of a step); sink.put() {put_us:.1f} us "
          f"({100 * put_us / 1e6 / step_s:.4f} % of a step); sink thread's TBWriter.write() of a {len(ev) - 4}-field "
          f"train event {write_us:.0f} us ({100 * write_us / 1e6 / step_s:.3f} % of a step); all per train event, "
          f"so divide by log_every")
    for i, clock in enumerate(("wall", "CPU-time") if args.rounds else ()):
        off = [x[i] for x in results["off"]]
        for mode in ("sys", "sys+tb", "off'"):
            ratios = sorted(x[i] / o for x, o in zip(results[mode], off))
            label = "A/A control" if mode == "off'" else mode
            print(f"{clock:8s} tokens/s {label:11s}/off: per-round median {statistics.median(ratios):.4f} "
                  f"range {ratios[0]:.3f}-{ratios[-1]:.3f} ({len(ratios)} rounds)")


if __name__ == "__main__":
    main()
