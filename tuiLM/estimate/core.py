"""``estimate(preset)``: parameters, peak memory of one training step, artifact size, FLOPs. Instant.

Peak memory per device (specs/estimator.md):

  weights      P x 4 (fp32 master weights; autocast keeps its bf16 copies under activations)
  grads        P x 4
  optimizer    AdamW: exp_avg + exp_avg_sq (8 bytes per parameter) and a step counter per tensor;
               Muon: one fp32 momentum buffer per hidden matrix, Adam state for everything else
  activations  tensors autograd keeps for backward, per architecture (activations.py)
  logits       the fp32 log-probabilities the loss keeps (and the soft cap's tanh), the fp32 logits
               the model returns, their gradient at the start of backward, and under autocast the
               head's bf16 output (its gradient in backward): 3-4 x B x T x V x 4 (+ B x T x V x 2)
  mhc          the n-fold residual state and mixing coefficients kept at every site
  ddp          gradient buckets, one more copy of the gradients, when world_size > 1
  overhead     CUDA context + caching-allocator slack (CUDA only): a fixed + proportional margin

The activation rows are what the exact mode counts on the same device; weights, grads and
optimizer are what the real model and optimizer hold. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..models.registry import family
from . import activations as act
from .params import Tensor, artifact_bytes, by_part, count, inventory
from .vocab import resolve_vocab

GiB = 2**30
CUDA_CONTEXT_BYTES = 512 * 2**20  # CUDA context + cuBLAS / kernel workspaces, outside the allocator
ALLOCATOR_SLACK = 0.10  # caching-allocator fragmentation and backward temporaries, share of the rest

PARTS = ("weights", "grads", "optimizer", "activations", "logits", "mhc", "ddp", "overhead")
DEVICES = ("cuda", "cpu", "mps")
DTYPES = ("bf16", "fp16", "fp32")


@dataclass
class Estimate:
    """The analytic estimate for one preset. All sizes in bytes, per device."""

    arch: str
    params: int  # equals sum(p.numel() for p in the built model's parameters)
    params_by_part: dict[str, int]  # embedding, attention, mlp, norms, lm_head, bigram, golf, mhc / BDH parts
    parts: dict[str, int]  # PARTS, each >= 0, summing to total_bytes
    total_bytes: int
    device: str  # the device the estimate assumes: cuda | cpu | mps
    dtype: str  # activation precision: bf16 | fp16 (autocast) | fp32
    assumption: str  # one line: what was assumed and why (e.g. device auto -> CUDA + bf16)
    vocab_size: int
    vocab_exact: bool  # False when the vocabulary is a guess (char tokenizer, unreadable model file)
    vocab_source: str
    batch_size: int  # train.device_batch_size
    seq_len: int
    world_size: int
    tokens_per_step: int  # tokens per optimizer step across devices and accumulation
    grad_accum: int  # micro-batches per optimizer step on each device
    flops_per_token: int  # training FLOPs (forward + backward) per token
    artifact_bytes_upper: int  # uncompressed int8 payload (training.md): an upper bound on the artifact
    saved_bytes: int  # tensors saved for backward (activations + mhc + the saved part of logits)
    activation_detail: dict[str, int] = field(default_factory=dict)  # saved bytes by component
    notes: list[str] = field(default_factory=list)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GiB

    def fits(self, budget_bytes: int | float) -> bool:
        return self.total_bytes <= budget_bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_precision(preset: Any, device: str | None = None, dtype: str | None = None) -> tuple[act.Precision, str]:
    """The device and activation dtype the estimate assumes, and a line saying why.

    ``system.device = auto`` is read as CUDA: the question is "will it fit my GPU". Ask for the CPU with
    ``device="cpu"`` (or ``--set system.device=cpu``). ``system.dtype = auto`` is bf16 autocast on CUDA
    and fp32 elsewhere, as the trainer does.
    """
    sysc = preset.system
    why = []
    dev = device or sysc.device
    if dev == "auto":
        dev = "cuda"
        why.append("device auto -> CUDA (set system.device=cpu for a CPU run)")
    if dev not in DEVICES:
        raise ValueError(f"unknown device {dev!r}")
    dt = dtype or sysc.dtype
    if dt == "auto":
        dt = "bf16" if dev == "cuda" else "fp32"
        why.append(f"dtype auto -> {dt}" + (" autocast" if dt != "fp32" else ""))
    if dt not in DTYPES:
        raise ValueError(f"unknown dtype {dt!r}")
    return act.Precision(dev, dt), "; ".join(why) or f"{dev}, {dt}"


def optimizer_bytes(tensors: list[Tensor], optim_name: str) -> int:
    """AdamW: two fp32 moments per parameter + a step counter per tensor; Muon: one fp32 momentum
    buffer per hidden matrix, AdamW state for the rest."""
    total = 0
    for t in tensors:
        if optim_name == "muon" and t.role == "matrix":
            total += 4 * t.numel
        else:
            total += 8 * t.numel + 4
    return total


def flops_per_token(m: Any, tensors: list[Tensor], V: int, T: int) -> int:
    """Training FLOPs per token: 6 x (parameters used in matmuls per token) + attention.

    Attention follows the PaLM / nanoGPT MFU convention (the full T x T, 12·L·T·d per token), so
    figures compare with what other tools print. Each family counts its own (``Family.flops``).
    """
    return family(m.arch).flops(m, tensors, V, T)


def gpt_flops(m: Any, tensors: list[Tensor], V: int, T: int) -> int:
    matmul = sum(t.numel for t in tensors if t.role in ("matrix", "head") or t.name.endswith(".phi"))
    if m.tie_embeddings:
        matmul += V * m.d_model  # the tied table is also the LM head
    attention = 12 * m.n_layers * T * m.d_model
    return 6 * matmul + attention


def mhc_flops(m: Any, tensors: list[Tensor], V: int, T: int) -> int:
    """The backbone plus the stream mixing at every site (two per layer)."""
    mixing = 0
    if m.mhc_streams > 1:
        n = m.mhc_streams
        mixing = 2 * m.n_layers * 6 * m.d_model * (n * n + 2 * n)
    return gpt_flops(m, tensors, V, T) + mixing


def bdh_flops(m: Any, tensors: list[Tensor], V: int, T: int) -> int:
    """BDH reuses its weights at every layer."""
    D, nh = m.d_model, m.n_heads
    N = m.bdh_mult * D // nh
    per_token = m.n_layers * 3 * nh * N * D + D * V
    attention = m.n_layers * nh * T * (N + D)  # (x_r x_r^T) over N, scores @ x over D
    return 6 * per_token + 6 * attention


# The fields the estimate reads: out-of-range values (a half-typed form field) give a ValueError naming
# the key instead of a division by zero or an hour-long loop.
USED_FIELDS = ("model.arch", "model.n_layers", "model.d_model", "model.n_heads", "model.n_kv_heads", "model.d_ff",
               "model.mlp_mult", "model.activation", "model.norm", "model.pos", "model.bigram_buckets",
               "model.bigram_dim", "model.mhc_streams", "model.mhc_mode", "model.mhc_iters", "model.bdh_mult",
               "model.dropout", "data.seq_len", "data.vocab_size", "data.tokenizer", "train.device_batch_size",
               "train.total_batch_size", "optim.name", "system.device", "system.dtype")


def check_inputs(preset: Any) -> None:
    """Raise ValueError("model.n_heads: ...") when a field the estimate reads is outside the schema."""
    from ..config.schema import BY_PATH  # stdlib only

    for path in USED_FIELDS:
        f, v = BY_PATH[path], preset.get(path)
        if f.choices is not None:
            if v not in f.choices:
                raise ValueError(f"{path}: {v!r} is not one of {', '.join(f.choices)}")
            continue
        if f.type in (int, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{path}: expected a number, got {v!r}")
            lo = f.min is not None and (v <= f.min if f.min_exclusive else v < f.min)
            hi = f.max is not None and (v >= f.max if f.max_exclusive else v > f.max)
            if lo or hi:
                raise ValueError(f"{path}: {v!r} is out of range {f.range_text()}")


def estimate(preset: Any, vocab_size: int | None = None, world_size: int = 1, *,
             device: str | None = None, dtype: str | None = None) -> Estimate:
    """Parameters, memory breakdown, artifact size and FLOPs for ``preset``; pure arithmetic.

    ``vocab_size``: what the model will be built with; derived from the preset when None (see
    ``vocab.resolve_vocab``: ``vocab_exact`` is False for a guess). ``device`` / ``dtype`` override
    the preset's system section (``"cpu"``, ``"fp32"`` ...).
    """
    check_inputs(preset)
    m, d, t = preset.model, preset.data, preset.train
    if vocab_size is None:
        V, exact, source = resolve_vocab(preset)
    else:
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        V, exact, source = vocab_size, True, "given"
    world_size = max(1, int(world_size))
    prec, assumption = resolve_precision(preset, device, dtype)
    B, T = t.device_batch_size, d.seq_len
    tensors = inventory(m, V, T)
    P = count(tensors)

    led = act.saved(preset, V, prec)
    detail = dict(led.items)
    logits_saved = detail.get("logits", 0)
    mhc = detail.get("mhc", 0)
    activations = led.total - logits_saved - mhc
    BTV = B * T * V
    # + the fp32 logits the model returns (the trainer holds them through backward) and their gradient;
    # under autocast also the head's low-precision output, or in backward its gradient (one at a time)
    logits = logits_saved + 2 * BTV * act.F32 + (BTV * prec.act if prec.autocast else 0)

    parts = {
        "weights": 4 * P,
        "grads": 4 * P,
        "optimizer": optimizer_bytes(tensors, preset.optim.name),
        "activations": activations,
        "logits": logits,
        "mhc": mhc,
        "ddp": 4 * P if world_size > 1 else 0,
        "overhead": 0,
    }
    if prec.device == "cuda":
        parts["overhead"] = CUDA_CONTEXT_BYTES + int(ALLOCATOR_SLACK * sum(parts.values()))

    per_micro = B * T * world_size
    tokens = t.total_batch_size or per_micro
    accum = max(1, tokens // per_micro)

    notes = []
    if not exact:
        notes.append(f"vocabulary {V} is a guess ({source}); set data.vocab_size for an exact figure")
    if not family(m.arch).attention and m.dropout > 0 and prec.device != "cuda":
        notes.append("attention dropout on the CPU uses SDPA's math path, which keeps T x T matrices")
    return Estimate(
        arch=m.arch, params=P, params_by_part=by_part(tensors), parts=parts, total_bytes=sum(parts.values()),
        device=prec.device, dtype=prec.dtype, assumption=assumption, vocab_size=V, vocab_exact=exact,
        vocab_source=source, batch_size=B, seq_len=T, world_size=world_size, tokens_per_step=tokens,
        grad_accum=accum, flops_per_token=flops_per_token(m, tensors, V, T),
        artifact_bytes_upper=artifact_bytes(tensors), saved_bytes=led.total, activation_detail=detail,
        notes=notes,
    )


__all__ = ["DEVICES", "DTYPES", "Estimate", "PARTS", "estimate", "flops_per_token", "optimizer_bytes",
           "resolve_precision"]
