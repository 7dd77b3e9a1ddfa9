"""Exact and measured memory: one forward + backward of the real model, counting what autograd keeps.

Torch is imported inside the functions only: the CLI and the TUI import this package without it.

* ``exact``: the model is built and run under ``FakeTensorMode`` on the CPU: every operator runs its
  shape logic, nothing is allocated, so even a 40 GiB BDH step takes seconds. The tensors autograd
  saves for backward are counted with ``torch.autograd.graph.saved_tensors_hooks``, each storage once,
  parameters excluded (they are the "weights" row). Optimizer state is counted from a real optimizer
  step under the fake mode.
* ``measure``: the same count on real tensors (one real step on the CPU), plus, on CUDA,
  ``torch.cuda.max_memory_allocated`` over forward, backward and optimizer step.

What is counted is the CPU kernel choice: scaled_dot_product_attention runs the fused flash kernel
for the CPU (it saves q, k, v, the output and the log-sum-exp, no T x T matrix) when dropout is 0;
with attention dropout the CPU has no fused kernel and PyTorch falls back to the math path, which
keeps the T x T probabilities and the dropout mask. On CUDA flash attention keeps dropout without
them, so for a CUDA target with dropout the CPU count is an over-estimate (the analytic CUDA figure
is the one to read). bf16 runs use CPU autocast, whose operator lists differ in small ways from CUDA's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..models.registry import family
from .vocab import resolve_vocab


@dataclass
class Counted:
    """Memory of one step as counted by ``exact`` or ``measure`` (bytes)."""

    mode: str  # "exact" (fake tensors) | "measure" (real tensors)
    device: str  # where the step ran: "cpu" or "cuda"
    dtype: str  # "fp32" | "bf16" (autocast)
    params: int
    weights: int
    grads: int
    optimizer: int
    saved: int  # tensors autograd keeps for backward, each storage once, parameters excluded
    saved_tensors: int  # how many distinct storages
    attention_kernel: str
    peak_allocated: int | None = None  # CUDA max_memory_allocated over the whole step
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _torch_dtype(torch: Any, name: str) -> Any:
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _attention_kernel(preset: Any, device: str) -> str:
    own = family(preset.model.arch).attention
    if own:
        return own
    if device != "cpu":
        return f"SDPA, {device} kernel choice"
    if preset.model.dropout > 0:
        return "SDPA math path (CPU has no fused kernel with dropout)"
    return "SDPA flash (CPU fused kernel)"


class SavedCounter:
    """Counts the storages autograd saves for backward, once each, excluding ``exclude`` storages."""

    def __init__(self, exclude: set[int]):
        self.exclude = exclude
        self.seen: dict[int, int] = {}
        self.detail: list[tuple[tuple[int, ...], str, int]] = []

    def pack(self, t: Any) -> Any:
        storage = t.untyped_storage()
        key = storage._cdata  # the StorageImpl: views of one tensor share it, fake tensors included
        if key not in self.exclude and key not in self.seen:
            self.seen[key] = storage.nbytes()
            self.detail.append((tuple(t.shape), str(t.dtype).replace("torch.", ""), storage.nbytes()))
        return t

    @staticmethod
    def unpack(t: Any) -> Any:
        return t

    @property
    def total(self) -> int:
        return sum(self.seen.values())


def _step(preset: Any, vocab: int, dtype: str, device: str, want_peak: bool) -> dict[str, Any]:
    """Build, run one forward + backward + optimizer step; return the counts."""
    import torch

    from ..models import build_model

    m, d, t = preset.model, preset.data, preset.train
    B, T = t.device_batch_size, d.seq_len
    model = build_model(m, vocab, T)
    if device != "cpu":
        model = model.to(device)
    model.train()
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    weights = sum(p.numel() * p.element_size() for p in params)
    exclude = {p.untyped_storage()._cdata for p in params}
    exclude |= {b.untyped_storage()._cdata for b in model.buffers()}  # derived tables: part of the model
    idx = torch.randint(0, vocab, (B, T), device=device)
    targets = torch.randint(0, vocab, (B, T), device=device)
    counter = SavedCounter(exclude)
    if want_peak:
        torch.cuda.reset_peak_memory_stats()
    amp = dtype != "fp32"
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        with torch.autocast(device_type=device, dtype=_torch_dtype(torch, dtype), enabled=amp):
            _, loss = model(idx, targets)
    loss.backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    optimizer, note = _optimizer_bytes(model, preset, device)
    peak = torch.cuda.max_memory_allocated() if want_peak else None
    return {"params": n_params, "weights": weights, "grads": grads, "optimizer": optimizer,
            "saved": counter.total, "saved_tensors": len(counter.seen), "peak": peak, "note": note,
            "detail": counter.detail}


def _optimizer_bytes(model: Any, preset: Any, device: str) -> tuple[int, str]:
    """State of the real optimizer after one step; the role rule if it cannot step here."""
    try:
        from ..train.optim import make_optimizer

        opt = make_optimizer(model, preset.optim, device)
        opt.step()
        total = 0
        for o in opt.optimizers.values():
            for state in o.state.values():
                total += sum(v.numel() * v.element_size() for v in state.values() if hasattr(v, "numel"))
        return total, ""
    except Exception as e:  # an optimizer that cannot run under fake tensors: count by role
        roles = model.param_roles()
        muon = preset.optim.name == "muon"
        total = 0
        for name, p in model.named_parameters():
            total += p.numel() * 4 * (1 if muon and roles[name] == "matrix" else 2)
        return total, f"optimizer state counted by role ({type(e).__name__}: {e})"


def exact(preset: Any, *, vocab_size: int | None = None, dtype: str = "fp32", detail: bool = False) -> Counted:
    """Count one step of the real model under FakeTensorMode on the CPU (nothing is allocated)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    vocab = vocab_size or resolve_vocab(preset)[0]
    with FakeTensorMode(allow_non_fake_inputs=True):
        r = _step(preset, vocab, dtype, "cpu", want_peak=False)
    out = _counted("exact", "cpu", dtype, preset, r)
    if detail:
        out.notes.extend(f"saved {shape} {dt} {nb}" for shape, dt, nb in r["detail"])
    return out


def measure(preset: Any, *, vocab_size: int | None = None, dtype: str = "fp32", device: str = "cpu",
            seed: int = 0) -> Counted:
    """One real step on ``device``; on CUDA also torch.cuda.max_memory_allocated."""
    import torch

    torch.manual_seed(seed)
    vocab = vocab_size or resolve_vocab(preset)[0]
    on_cuda = device == "cuda"
    if on_cuda:
        torch.cuda.empty_cache()
    r = _step(preset, vocab, dtype, device, want_peak=on_cuda)
    return _counted("measure", device, dtype, preset, r)


def _counted(mode: str, device: str, dtype: str, preset: Any, r: dict[str, Any]) -> Counted:
    c = Counted(mode=mode, device=device, dtype=dtype, params=r["params"], weights=r["weights"],
                grads=r["grads"], optimizer=r["optimizer"], saved=r["saved"], saved_tensors=r["saved_tensors"],
                attention_kernel=_attention_kernel(preset, device), peak_allocated=r["peak"])
    if r["note"]:
        c.notes.append(r["note"])
    return c


def cpu_headroom_bytes() -> int:
    """Memory this machine can give a measured step (MemAvailable), or a large number if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


__all__ = ["Counted", "SavedCounter", "cpu_headroom_bytes", "cuda_available", "exact", "measure"]
