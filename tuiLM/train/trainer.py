"""The training loop behind ``python -m tuiLM.train RUN_DIR [--resume]``.

Reads ``RUN_DIR/preset.toml`` (validated again here), trains, and writes ``RUN_DIR/events.jsonl``
(rank 0 only) and checkpoints. Works alone or under ``torchrun`` (DDP: gloo on CPU, NCCL on CUDA).

Reliability (specs/training.md): SIGINT / SIGTERM finish the current step, checkpoint, write
``run_end(stopped)`` and exit 0; a non-finite loss writes ``run_end(failed)`` without checkpointing
(the last good checkpoint survives); a resumed run restores model, optimizer, scaler, step, tokens,
the batch generator and every RNG, so on CPU it ends bitwise where an uninterrupted run ends.

Events (beyond events.REQUIRED; ``step`` always counts completed optimizer steps):
  run_start  + study, trial, seed_index, trial_params when the run belongs to a study (runs.STUDY_FILE)
             + torch, device_name, dtype, estimate {...}, grad_accum, seq_len, device_batch_size,
             vocab_size, arch, preset_name, resumed, compile, flops_per_token, peak_tflops (one device,
             absent when unknown), peak_source, elapsed_before_s (training time of the earlier
             attempts, so readers show the total after a resume); corpus = {source, path, files, bytes,
             fingerprint, train_tokens, val_tokens, tokenizer, vocab_size}
  train      every train.log_every steps and at the last: + mem_gib; loss = mean over the step's
             micro-batches and ranks; grad_norm before clipping; tokens_per_s and dt_ms over the
             steps since the previous train event, counting step time only (not eval/sample/checkpoint);
             flops_per_s = the estimate's flops_per_token x tokens_per_s, mfu = flops_per_s over the
             peak of all devices (when a peak is known: estimate/peaks.py or system.peak_tflops), and
             rank 0's system metrics (sysmetrics.py: rss_gib, cpu_pct, host memory, GPU via NVML)
  eval       every eval.every steps and at the end: + val_tokens, val_bytes (bpb is NaN when the
             tokenizer's bytes are unknown: opaque ids)
  diag       every diag.every steps when the model returns metrics: + tokens and the model's names
  sample     every sample.every steps and at the end (sample.every > 0): + temperature, top_k, seed
  checkpoint + tokens, bytes; path relative to the run directory
  log        + step (+ source = "preset" for validation warnings)
  run_end    status completed | stopped | pruned | failed (pruned: stopped on request of a study, see
             runs.STOP_REQUEST)
             + tokens, best_val_bpb, best_val_loss, elapsed_s (training time over all attempts), and
             unless failed artifact_bytes = model_bytes (int8 + zlib) + code_bytes

Test hooks (environment, read once at start; not for users):
``TUILM_FAULT_NAN_AT_STEP=k`` makes the loss of step k non-finite; ``TUILM_FAULT_KILL_AT_STEP=k``
SIGKILLs the trainer right after step k (after its checkpoint, if one falls on k).
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import platform
import resource
import signal
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import __version__
from ..config.load import Preset, load
from ..errors import UserError
from ..events import EventWriter
from ..reader import read_run, refresh_cache
from ..runs import CHECKPOINTS, EVENTS, LOCKFILE, PIDFILE, PRESET, RunError, clear_stop_request, read_stop_request, read_study_info, write_error_message
from ..ownership import acquire_run_lock, identity_of, lock_held, record_identity
from .artifact import artifact_size
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .data import BatchSampler, Corpus, fixed_batch, load_corpus
from .evaluate import ByteTable, evaluate
from .optim import OptimizerSet, make_optimizer
from .schedule import lr_factor, muon_momentum
from .sysmetrics import SystemSampler
from .tokenizers import TOKENIZER_FILE, load_tokenizer, save_tokenizer


# -- process setup -------------------------------------------------------------------------------

@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device_pref: str) -> DistInfo:
    """Join the torchrun process group when launched by it (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device_pref in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def resolve_device(pref: str, info: DistInfo) -> torch.device:
    if pref == "auto":
        if torch.cuda.is_available():
            pref = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            pref = "mps"
        else:
            pref = "cpu"
    if pref == "cuda":
        if not torch.cuda.is_available():
            raise UserError("system.device = 'cuda' but CUDA is not available (use 'auto' or 'cpu')")
        return torch.device("cuda", info.local_rank)
    if pref == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise UserError("system.device = 'mps' but MPS is not available (use 'auto' or 'cpu')")
        if info.enabled:
            raise UserError("DDP is not supported on MPS: use --nproc 1")
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(pref: str, device: torch.device) -> str:
    if pref == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if pref == "fp16" and device.type != "cuda":
        raise UserError(f"system.dtype = 'fp16' needs CUDA (a GradScaler); on {device.type} use bf16 or fp32")
    return pref


def mem_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak RSS (KiB on Linux, bytes on macOS)
    return kib / (2**30 if sys.platform == "darwin" else 2**20)


def _fault_step(name: str) -> int:
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:
        return 0


# -- signals -------------------------------------------------------------------------------------

class StopFlag:
    """SIGINT / SIGTERM ask the loop to stop after the current step.

    A second Ctrl-C (SIGINT) kills at once. Further SIGTERMs are ignored: torchrun forwards a SIGTERM
    to its workers when it is itself signalled, and that must not cut a rank's checkpoint short.
    """

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is None:
            self.signal = signum
        elif signum == signal.SIGINT:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    @property
    def set(self) -> bool:
        return self.signal is not None


# -- the trainer ---------------------------------------------------------------------------------

class Failed(Exception):
    """A run that must end as failed (non-finite loss); the message is the reason."""


class Trainer:
    def __init__(self, run_dir: Path, preset: Preset, *, resume: bool = False, info: DistInfo | None = None,
                 writer: EventWriter | None = None, stop: StopFlag | None = None,
                 out: Callable[[str], None] | None = None, model_builder: Callable[..., nn.Module] | None = None):
        self.run_dir = Path(run_dir)
        self.preset = preset
        self.resume = resume
        self.info = info or DistInfo()
        self.writer = writer
        self.stop = stop or StopFlag()
        self.launcher: int | None = None  # under torchrun: its pid, which holds the run's lock (main sets it)
        self._out = out or (lambda s: print(s, flush=True))
        self.model_builder = model_builder
        self.step = 0
        self.tokens = 0
        self.best_val_bpb = math.nan
        self.best_val_loss = math.nan
        self.elapsed_before = 0.0
        self.started = False  # this attempt wrote its run_start
        self.fault_nan = _fault_step("TUILM_FAULT_NAN_AT_STEP")
        self.fault_kill = _fault_step("TUILM_FAULT_KILL_AT_STEP")
        self.flops_per_token = 0
        self.peak_tflops: float | None = None
        self.sampler_sys: SystemSampler | None = None

    # -- output ----------------------------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> None:
        if self.writer is not None and self.info.main:
            self.writer.write(kind, **fields)

    def say(self, text: str) -> None:
        if self.info.main:
            self._out(text)

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message, step=self.step)
        self.say(f"[{level}] {message}" if level != "info" else message)

    def _warn_shared_cores(self) -> None:
        """Another trainer on this host's CPU, both with torch's default (every core): say so once."""
        from ..machine import other_trainers

        try:
            others = [p for p in other_trainers(self.run_dir) if _on_cpu(p)]
        except Exception:  # a warning must never stop a run
            return
        if others:
            cores = os.cpu_count() or 1
            names = ", ".join(p.name for p in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            self.log(f"{len(others)} other tuiLM trainer{'s' if len(others) > 1 else ''} on this machine's CPU "
                     f"({names}), and this one takes all {cores} cores (system.threads = 0): oversubscribed, they "
                     f"run many times slower; give each run system.threads = {max(1, cores // (len(others) + 1))} "
                     f"(a study divides the cores itself)", "warning")

    # -- setup -----------------------------------------------------------------------------------

    def setup(self) -> None:
        p = self.preset
        sysc, data, train = p.system, p.data, p.train
        if sysc.threads:
            torch.set_num_threads(sysc.threads)
        self.device = resolve_device(sysc.device, self.info)
        if self.device.type == "cpu" and not sysc.threads and self.info.main:
            self._warn_shared_cores()
        self.dtype = resolve_dtype(sysc.dtype, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = sysc.tf32
            torch.backends.cudnn.allow_tf32 = sysc.tf32
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16 if self.dtype == "bf16" else torch.float16)
                         if self.dtype in ("bf16", "fp16") else nullcontext())
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == "fp16" else None

        # batch geometry
        B, T, W = train.device_batch_size, data.seq_len, self.info.world
        per_micro = B * T * W
        total = train.total_batch_size or per_micro
        if total % per_micro:
            raise UserError(f"train.total_batch_size ({total}) is not a multiple of device_batch_size x seq_len x "
                            f"devices ({B} x {T} x {W} = {per_micro})")
        self.accum = total // per_micro
        self.tokens_per_step = total
        self.rows_per_step = total // T

        # data and tokenizer
        saved_tok = load_tokenizer(self.run_dir) if (self.run_dir / TOKENIZER_FILE).exists() else None
        self.corpus: Corpus = load_corpus(data, saved_tokenizer=saved_tok)
        if saved_tok is None and self.info.main:
            save_tokenizer(self.corpus.tokenizer, self.run_dir)
        self.vocab_size = self.corpus.vocab_size
        self.sampler = BatchSampler(self.corpus.train, T, self.rows_per_step, seed=p.run.seed,
                                    vocab_size=self.vocab_size)
        self.byte_table = ByteTable.from_tokenizer(self.corpus.tokenizer, self.vocab_size, self.device)
        self.diag_batch = fixed_batch(self.corpus.val, T, B).to(self.device) if p.diag.every else None
        self.prompt_ids: list[int] | None = None
        if p.sample.every:
            self.prompt_ids = self.corpus.tokenizer.encode(p.sample.prompt) or self.corpus.tokenizer.encode("\n")

        # model and optimizer (same seed on every rank; DDP also broadcasts rank 0's weights)
        torch.manual_seed(p.run.seed)
        if self.model_builder is None:
            from ..models import build_model

            self.model_builder = build_model
        self.raw = self.model_builder(p.model, self.vocab_size, T).to(self.device)
        self.opt: OptimizerSet = make_optimizer(self.raw, p.optim, self.device.type)
        self.params = [q for q in self.raw.parameters() if q.requires_grad]
        # dropout differs per rank; the seed is set again from the checkpoint's RNG state on resume
        torch.manual_seed(p.run.seed + 1 + self.info.rank)
        if self.resume:
            self._restore()
        model: nn.Module = self.raw
        if sysc.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.model = model
        if self.info.main:
            self.sampler_sys = SystemSampler(self.device)

    def _restore(self) -> None:
        path = latest_checkpoint(self.run_dir / CHECKPOINTS)
        if path is None:
            self.log("no checkpoint to resume from: starting at step 0", "warning")
            return
        state = load_checkpoint(path)
        latest = read_run(self.run_dir).run_start  # every attempt checked it: the first one's corpus
        was = ((latest or {}).get("corpus") or {}).get("fingerprint")
        if was and was != self.corpus.info["fingerprint"]:
            raise UserError(f"the corpus changed since this run started (fingerprint {was}, now "
                            f"{self.corpus.info['fingerprint']}): resuming would not continue the same curve")
        if state.get("vocab_size", self.vocab_size) != self.vocab_size:
            raise UserError(f"{path}: vocabulary {state['vocab_size']} differs from the data's {self.vocab_size}")
        try:
            self.raw.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UserError(f"{path}: does not fit this run's model/optimizer ({str(e)[:300]})") from None
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.tokens = int(state["step"]), int(state["tokens"])
        self.best_val_bpb = float(state.get("best_val_bpb", math.nan))
        self.best_val_loss = float(state.get("best_val_loss", math.nan))
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        rng = state.get("rng", [])
        if len(rng) == self.info.world:
            mine = rng[self.info.rank]
            torch.set_rng_state(mine["torch"])
            if self.device.type == "cuda" and mine.get("cuda") is not None:
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        else:
            torch.manual_seed(self.preset.run.seed + 1 + self.info.rank + 1_000_003 * self.step)
            self.log(f"resuming with {self.info.world} processes instead of {len(rng)}: the batches are the "
                     f"same, dropout masks are not", "warning")
        self.log(f"resumed from {path.name} at step {self.step}")

    # -- collectives -----------------------------------------------------------------------------

    def all_reduce(self, t: torch.Tensor) -> None:
        if self.info.enabled:
            dist.all_reduce(t)

    def _rng_states(self) -> list[dict[str, Any]]:
        mine = {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        if not self.info.enabled:
            return [mine]
        out: list[Any] = [None] * self.info.world
        dist.all_gather_object(out, mine)
        return out

    # -- pieces of the loop ----------------------------------------------------------------------

    def checkpoint(self, elapsed: float) -> None:
        rng = self._rng_states()  # collective: every rank takes part
        if not self.info.main:
            return
        state = {"model": self.raw.state_dict(), "optimizer": self.opt.state_dict(),
                 "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                 "sampler": self.sampler.state_dict(), "rng": rng, "step": self.step, "tokens": self.tokens,
                 "best_val_bpb": self.best_val_bpb, "best_val_loss": self.best_val_loss, "elapsed_s": elapsed,
                 "vocab_size": self.vocab_size, "world_size": self.info.world}
        meta = {"tokens": self.tokens, "time": time.time(), "val_bpb": self.best_val_bpb}
        path = save_checkpoint(self.run_dir / CHECKPOINTS, self.step, state, meta, self.preset.checkpoint.keep)
        self.emit("checkpoint", step=self.step, tokens=self.tokens, path=str(path.relative_to(self.run_dir)),
                  bytes=path.stat().st_size)
        refresh_cache(self.run_dir)  # a long run opens from its column cache, not from 10^6 JSON lines
        self.say(f"checkpoint {path.name}")

    def run_eval(self) -> dict[str, float]:
        e, d = self.preset.eval, self.preset.data
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            res = evaluate(self.raw, self.corpus.val, self.byte_table, d.seq_len, self.preset.train.device_batch_size,
                           max_batches=e.batches, stride=e.stride, device=self.device, autocast=self.autocast,
                           rank=self.info.rank, world=self.info.world, all_reduce=self.all_reduce)
        bpb, loss = res["val_bpb"], res["val_loss"]
        if bpb == bpb:  # comparisons with a NaN best are False, so the first finite value wins
            if not bpb >= self.best_val_bpb:
                self.best_val_bpb, self.best_val_loss = bpb, loss
        elif not loss >= self.best_val_loss:  # bytes unknown (opaque ids): track the loss alone
            self.best_val_loss = loss
        self.emit("eval", step=self.step, tokens=self.tokens, **res)
        self.say(f"step {self.step}: val_loss {res['val_loss']:.4f} val_bpb {res['val_bpb']:.4f}")
        return res

    def run_diag(self) -> None:
        if not self.info.main or self.diag_batch is None:
            return
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []), torch.no_grad():
            metrics = self.raw.diagnostics(self.diag_batch)
        if metrics:
            self.emit("diag", step=self.step, tokens=self.tokens, **{k: float(v) for k, v in metrics.items()})

    def run_sample(self) -> None:
        if not self.info.main or self.prompt_ids is None:
            return
        from ..models.generate import generate

        s = self.preset.sample
        idx = torch.tensor([self.prompt_ids], dtype=torch.long, device=self.device)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []), self.autocast:
            out = generate(self.raw, idx, s.max_new_tokens, temperature=s.temperature, top_k=s.top_k, seed=s.seed,
                           vocab_limit=self.corpus.tokenizer.vocab_size)
        text = self.corpus.tokenizer.decode(out[0, len(self.prompt_ids):].tolist())
        self.emit("sample", step=self.step, prompt=s.prompt, text=text, temperature=s.temperature, top_k=s.top_k,
                  seed=s.seed)
        self.say(f"sample @ {self.step}: {s.prompt}{text!r}")

    def _kept(self) -> str:
        """What a failed run leaves to resume from, in words (a run that failed before its first
        checkpoint has none: it said "the last good checkpoint is kept" all the same)."""
        path = latest_checkpoint(self.run_dir / CHECKPOINTS)
        if path is None:
            return "no checkpoint was written yet (a resume starts again at step 0)"
        return f"its last good checkpoint, {path.name}, is kept"

    def grad_norm(self) -> torch.Tensor:
        clip = self.preset.train.grad_clip
        if clip > 0:
            return torch.nn.utils.clip_grad_norm_(self.params, clip)
        return torch.nn.utils.get_total_norm([q.grad for q in self.params if q.grad is not None])

    # -- the loop --------------------------------------------------------------------------------

    def train_step(self) -> tuple[float, float, bool]:
        """One optimizer step; returns (loss, grad_norm, stop requested on any rank)."""
        p = self.preset
        step = self.step
        self.opt.set_schedule(lr_factor(step, p.schedule, p.train.max_steps),
                              muon_momentum(step, p.optim) if p.optim.name == "muon" else None)
        starts = self.sampler.draw()
        loss_sum = torch.zeros((), device=self.device)
        B = p.train.device_batch_size
        for micro in range(self.accum):
            x, y = self.sampler.micro_batch(starts, micro, self.info.rank, self.info.world, B)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            last = micro == self.accum - 1
            sync = self.model.no_sync() if self.info.enabled and not last else nullcontext()  # type: ignore[operator]
            with sync:
                with self.autocast:
                    _, loss = self.model(x, y)
                if self.fault_nan == step + 1:
                    loss = loss * float("nan")
                loss_sum += loss.detach().float()
                scaled = loss / self.accum
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        orphan = float(self.launcher is not None and os.getppid() != self.launcher)
        stats = torch.stack([loss_sum / self.accum, torch.tensor(float(self.stop.set), device=self.device),
                             torch.tensor(orphan, device=self.device)])
        if self.info.enabled:
            dist.all_reduce(stats)
            stats[0] /= self.info.world
        loss_v, stop, orphans = stats.tolist()
        if orphans:  # every rank learns it in the same collective, so none waits in the next one for ever
            self._exit_orphaned()
        if not math.isfinite(loss_v):
            self.opt.zero_grad()
            raise Failed(f"non-finite loss ({loss_v}) while training step {step + 1}; {self._kept()}")
        if self.scaler is not None:
            self.opt.unscale_(self.scaler)
        log_now = (step + 1) % p.train.log_every == 0 or step + 1 == p.train.max_steps
        norm = self.grad_norm() if (p.train.grad_clip > 0 or log_now or self.scaler is None) else None
        if self.scaler is None and norm is not None and not math.isfinite(float(norm)):
            # a finite loss with inf/NaN gradients would write NaN weights (a GradScaler skips such steps)
            self.opt.zero_grad()
            raise Failed(f"non-finite gradient norm ({float(norm)}) while training step {step + 1}; {self._kept()}")
        self.opt.step(self.scaler)
        if self.scaler is not None:
            self.scaler.update()
        self.opt.zero_grad()
        self.step += 1
        self.tokens += self.tokens_per_step
        return loss_v, float(norm) if norm is not None else math.nan, stop > 0

    def run_start_event(self) -> None:
        p = self.preset
        est: dict[str, Any] = {}
        try:
            from ..estimate import estimate

            # the run's own device, precision, vocabulary and world size, so the recorded estimate is
            # the one to compare with this run's measured memory
            e = estimate(p, vocab_size=self.vocab_size, world_size=self.info.world,
                         device=self.device.type, dtype=self.dtype)
            est = {k: v for k, v in (dataclasses.asdict(e) if dataclasses.is_dataclass(e) else vars(e)).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.flops_per_token = int(e.flops_per_token)
        except Exception as exc:  # the estimate is informative only; a broken estimator must not stop training
            est = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        versions = {"tuilm": __version__, "python": platform.python_version(), "torch": torch.__version__,
                    "numpy": np.__version__, "cuda": torch.version.cuda or ""}
        n_params = sum(q.numel() for q in self.raw.parameters())
        from ..estimate.peaks import peak_tflops

        device_name = _device_name(self.device)
        self.peak_tflops, peak_source = peak_tflops(self.device.type, device_name, self.dtype,
                                                    p.system.tf32, p.system.peak_tflops)
        perf: dict[str, Any] = {"peak_source": peak_source}
        if self.flops_per_token:
            perf["flops_per_token"] = self.flops_per_token
        if self.peak_tflops is not None:
            perf["peak_tflops"] = self.peak_tflops
        self.emit("run_start", run_id=self.run_dir.name, versions=versions, torch=torch.__version__,
                  device=str(self.device), device_name=device_name, dtype=self.dtype,
                  params=n_params, estimate=est, world_size=self.info.world, max_steps=p.train.max_steps,
                  tokens_per_step=self.tokens_per_step, grad_accum=self.accum, seq_len=p.data.seq_len,
                  device_batch_size=p.train.device_batch_size, corpus=self.corpus.info, vocab_size=self.vocab_size,
                  arch=p.model.arch, preset_name=_preset_name(self.run_dir, p), pid=os.getpid(), step=self.step,
                  resumed=self.resume and self.step > 0, compile=p.system.compile, **perf,
                  elapsed_before_s=round(self.elapsed_before, 3), **_machine_memory(self.device),
                  **read_study_info(self.run_dir))
        self.started = True
        self.say(f"{p.model.arch}: {n_params:,} parameters, vocab {self.vocab_size}, {self.device} {self.dtype}, "
                 f"world {self.info.world}, {self.tokens_per_step:,} tokens/step (accumulation {self.accum}), "
                 f"corpus {self.corpus.info['fingerprint']} ({self.corpus.train_tokens:,} train / "
                 f"{self.corpus.val_tokens:,} val tokens)")

    def train(self) -> str:
        """Run to max_steps or a stop signal. Returns 'completed' or 'stopped'; raises Failed."""
        p = self.preset
        self.run_start_event()
        t_session = time.monotonic()

        def elapsed() -> float:
            return self.elapsed_before + time.monotonic() - t_session

        last_ckpt_step = self.step if self.resume else -1
        win_tokens, win_time, win_steps = 0, 0.0, 0
        status = "completed"
        max_steps = p.train.max_steps
        self.raw.train()
        while self.step < max_steps:
            if self.stop.set and not self.info.enabled:
                status = self.stop_status()
                break
            t0 = time.perf_counter()
            loss, norm, stop = self.train_step()
            dt = time.perf_counter() - t0
            win_tokens += self.tokens_per_step
            win_time += dt
            win_steps += 1
            s = self.step
            if s % p.train.log_every == 0 or s == max_steps:
                lr = self.opt.param_groups[0]["lr"]
                tps = win_tokens / win_time if win_time > 0 else 0.0
                dt_ms = 1000 * win_time / max(1, win_steps)
                extra = self.perf_fields(tps)
                self.emit("train", step=s, tokens=self.tokens, loss=loss, lr=lr, grad_norm=norm, tokens_per_s=tps,
                          dt_ms=dt_ms, mem_gib=round(mem_gib(self.device), 4), **extra)
                self.say(f"step {s}/{max_steps} | loss {loss:.4f} | lr {lr:.3g} | grad_norm {norm:.3f} | "
                         f"{tps:,.0f} tok/s | {dt_ms:.1f} ms" + (f" | mfu {extra['mfu']:.1%}" if "mfu" in extra else ""))
                win_tokens, win_time, win_steps = 0, 0.0, 0
            final = s == max_steps
            if (p.eval.every and s % p.eval.every == 0) or final:
                self.run_eval()
            if p.diag.every and s % p.diag.every == 0:
                self.run_diag()
            if (p.sample.every and s % p.sample.every == 0) or final:
                self.run_sample()
            if (p.checkpoint.every and s % p.checkpoint.every == 0) or final or stop:
                self.checkpoint(elapsed())
                last_ckpt_step = s
            if self.fault_kill == s:
                os.kill(os.getpid(), signal.SIGKILL)
            if stop:
                status = self.stop_status()
                break
        if status != "completed" and last_ckpt_step != self.step:
            self.checkpoint(elapsed())
        return status

    def _exit_orphaned(self) -> None:
        """Ranks whose torchrun was killed (kill -9: it could not pass a signal on) trained on without
        the run's lock, and a resume could start beside them. They now all exit after the step's
        all-reduce, writing nothing: the run is left as a killed trainer leaves it, resumable from its
        last checkpoint."""
        print(f"error: rank {self.info.rank}: its launcher (torchrun, pid {self.launcher}) is gone and with it "
              f"the run's lock: exiting", file=sys.stderr, flush=True)
        os._exit(1)

    def perf_fields(self, tokens_per_s: float) -> dict[str, float]:
        """Achieved model FLOPs/s, MFU and the system metrics of one train event (rank 0 only)."""
        out: dict[str, float] = {}
        if not self.info.main:
            return out
        if self.flops_per_token and tokens_per_s > 0:
            fps = self.flops_per_token * tokens_per_s
            out["flops_per_s"] = float(f"{fps:.6g}")
            if self.peak_tflops:
                from ..estimate.peaks import mfu

                out["mfu"] = round(mfu(fps, self.peak_tflops, self.info.world), 6)
        if self.sampler_sys is not None:
            out.update(self.sampler_sys.sample())
        return out

    def stop_status(self) -> str:
        """'stopped', or the status a stop request in the run directory asks for ('pruned')."""
        return read_stop_request(self.run_dir)[0]

    def summary(self, status: str, reason: str, elapsed_s: float, measure: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"status": status, "step": self.step, "reason": reason, "tokens": self.tokens,
                               "best_val_bpb": self.best_val_bpb, "best_val_loss": self.best_val_loss,
                               "elapsed_s": round(elapsed_s, 3)}
        if measure and self.info.main:
            out.update(artifact_size(self.raw))
        return out


def _on_cpu(run_dir: Path) -> bool:
    """Whether another run trains on the CPU (its frozen preset's system.device is not cuda): a GPU
    trainer takes a core, not all of them."""
    from ..runs import read_preset

    return read_preset(run_dir).get("system", {}).get("device", "auto") != "cuda" or not torch.cuda.is_available()


def _machine_memory(device: torch.device) -> dict[str, float]:
    """run_start's ``machine_mem_gib``: the memory the run's device has (host RAM on the CPU)."""
    from ..machine import device_memory

    mem = device_memory(device.type)
    return {"machine_mem_gib": round(mem.gib, 3)} if mem else {}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _preset_name(run_dir: Path, preset: Preset) -> str:
    """The preset file the run was created from (recorded in preset.toml's header), else run.name."""
    try:
        for line in (run_dir / PRESET).read_text(encoding="utf-8").splitlines()[:10]:
            if line.startswith("# source: "):
                return Path(line[len("# source: "):].strip()).stem
    except OSError:
        pass
    return preset.run.name


# -- entry point ---------------------------------------------------------------------------------

CLEAN_ENDS = ("completed", "stopped", "pruned")


def _last_end(run_dir: Path) -> dict[str, Any] | None:
    """The run_end of the run's latest attempt, or None when it has none (new, or died)."""
    return read_run(run_dir).run_end


def _has_started(run_dir: Path) -> bool:
    return read_run(run_dir).run_start is not None


LOCK_FD_ENV = "TUILM_RUN_LOCK_FD"  # launch.spawn_trainer hands the locked trainer.lock over as this fd


def own_run(run_dir: Path) -> int | None:
    """Make sure this process (rank 0) owns the run for its whole life (see ownership.py): keep the locked
    file the launcher handed over, or take the lock now when started by hand. Returns the descriptor
    to keep open (None when the launcher's torchrun holds it for us). Raises RunError when another
    trainer owns the run."""
    fd_text = os.environ.pop(LOCK_FD_ENV, None)  # never for our own children
    if fd_text:
        try:
            fd = int(fd_text)
            here, there = os.fstat(fd), os.stat(run_dir / LOCKFILE)
            if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                return fd
        except (ValueError, OSError):
            pass
        if lock_held(run_dir):  # a rank of the launcher's torchrun, which holds the lock
            return None
    fd = acquire_run_lock(run_dir)
    try:
        record_identity(fd, identity_of(os.getpid()))
        (run_dir / PIDFILE).write_text(f"{os.getpid()}\n")
    except OSError as e:
        os.close(fd)
        raise RunError(write_error_message(e, e.filename or run_dir / LOCKFILE)) from None
    return fd


def main(run_dir: str | Path, resume: bool = False, early_signals: list[int] | None = None,
         launcher: int | None = None) -> int:
    """``early_signals``: SIGINT / SIGTERM noted before this module was imported (__main__), read once
    the trainer's own handlers are installed (so none falls between the two)."""
    run_dir = Path(run_dir)
    if not (run_dir / PRESET).is_file():
        print(f"error: {run_dir}: not a run directory (no {PRESET})", file=sys.stderr, flush=True)
        return 2
    stop = StopFlag()
    stop.install()
    if early_signals and stop.signal is None:
        stop.signal = early_signals[0]
    t_start = time.monotonic()
    info = DistInfo()
    writer: EventWriter | None = None
    trainer: Trainer | None = None
    lock_fd: int | None = None
    try:
        preset, problems = load(run_dir / PRESET)
        info = init_distributed(preset.system.device)
        if info.main:
            try:
                lock_fd = own_run(run_dir)
            except RunError as e:  # another trainer owns the run: touch nothing of it
                print(f"error: {e}", file=sys.stderr, flush=True)
                return 3
            clear_stop_request(run_dir)  # the run is ours: a request meant for an earlier attempt goes
            writer = EventWriter(run_dir / EVENTS)
            if not resume and _has_started(run_dir):
                raise UserError(f"{run_dir} has already been started: resume it (tuilm resume {run_dir.name})")
            if preset.system.tensorboard_dir:
                writer = _mirror(writer, run_dir, preset.system.tensorboard_dir)  # type: ignore[assignment]
        errors = [x for x in problems if x.is_error]
        if errors:
            raise UserError("invalid preset: " + "; ".join(str(x) for x in errors))
        trainer = Trainer(run_dir, preset, resume=resume, info=info, writer=writer, stop=stop)
        trainer.launcher = launcher if info.enabled else None
        for w in problems:  # warnings only (errors raised above); the launcher already showed them
            where = f"{w.path} (line {w.line})" if w.line else w.path
            trainer.emit("log", level="warning", message=f"{where}: {w.message}", source="preset", step=0)
        trainer.setup()
        if trainer.step >= preset.train.max_steps:
            status, reason = "completed", f"already at max_steps ({preset.train.max_steps})"
            trainer.run_start_event()
        else:
            status = trainer.train()
            reason = ("" if status == "completed" else
                      read_stop_request(run_dir)[1] if status != "stopped" else read_stop_request(run_dir)[1] or
                      (f"stopped by {signal.Signals(stop.signal).name}" if stop.signal else "stopped by another rank"))
        end = trainer.summary(status, reason, trainer.elapsed_before + time.monotonic() - t_start)
        if writer is not None:
            writer.write("run_end", **end)
        if info.main:
            _print_end(end)
        return 0
    except Failed as e:
        return _fail(writer, trainer, str(e), t_start, info, run_dir)
    except UserError as e:
        return _fail(writer, trainer, str(e), t_start, info, run_dir)
    except OSError as e:  # a full disk, a read-only folder: name the file, no traceback needed
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return _fail(writer, trainer, write_error_message(e), t_start, info, run_dir)
        where = f"{e.filename}: " if e.filename else ""
        return _fail(writer, trainer, f"{where}{e.strerror or e}", t_start, info, run_dir)
    except Exception as e:
        traceback.print_exc()
        return _fail(writer, trainer, f"{type(e).__name__}: {e}", t_start, info, run_dir)
    finally:
        if trainer is not None and trainer.sampler_sys is not None:
            trainer.sampler_sys.close()
        if writer is not None:
            try:
                writer.close()
            except OSError:
                pass
            refresh_cache(run_dir)
        if info.enabled and dist.is_initialized():
            dist.destroy_process_group()
        if lock_fd is not None:  # last: the run is ours until everything above is on disk
            os.close(lock_fd)


def _mirror(writer: EventWriter, run_dir: Path, logdir: str) -> Any:
    """The events also go live to TensorBoard files in logdir/<run-id>, from a background thread."""
    from ..export import MirroredWriter, TensorBoardSink, preset_hparams

    return MirroredWriter(writer, TensorBoardSink(Path(logdir).expanduser() / run_dir.name,
                                                  hparams=preset_hparams(run_dir)))


def _fail(writer: EventWriter | None, trainer: Trainer | None, reason: str, t_start: float, info: DistInfo,
          run_dir: Path) -> int:
    print(f"error: {reason}", file=sys.stderr, flush=True)
    before = None if trainer is not None and trainer.started else _last_end(run_dir)
    if writer is not None and before is not None and before.get("status") in CLEAN_ENDS:
        # a resume that failed before its run_start changed nothing: a completed (or stopped) run keeps
        # its state and figures; the reason goes in a log event (and stdout.log)
        try:
            writer.write("log", level="error", message=reason, step=0)
        except OSError:
            pass
        return 1
    if writer is not None:
        if trainer is not None:
            end = trainer.summary("failed", reason, trainer.elapsed_before + time.monotonic() - t_start, measure=False)
        else:  # failed before it began: the run stays at the step it had reached
            step = before.get("step", 0) if before is not None else 0
            end = {"status": "failed", "step": step if isinstance(step, int) else 0, "reason": reason,
                   "elapsed_s": round(time.monotonic() - t_start, 3)}
        try:
            writer.write("run_end", **end)
        except OSError as e:  # the events file's disk is gone too: stdout.log keeps the reason
            print(f"error: cannot write run_end to events.jsonl: {e.strerror or e}", file=sys.stderr, flush=True)
    return 1


def _print_end(end: dict[str, Any]) -> None:
    parts = [f"{end['status']} at step {end['step']}"]
    if end.get("best_val_bpb") == end.get("best_val_bpb"):
        parts.append(f"best val_bpb {end['best_val_bpb']:.4f}")
    if "artifact_bytes" in end:
        parts.append(f"artifact {end['artifact_bytes']:,} bytes")
    parts.append(f"{end['elapsed_s']:.1f} s")
    print(" | ".join(parts), flush=True)
