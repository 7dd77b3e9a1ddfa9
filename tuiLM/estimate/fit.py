"""``fit(preset, budget)``: the smallest set of ``--set`` overrides that brings the estimate under a budget.

Levers in the order a user reaches for them (specs/estimator.md):

1. ``train.device_batch_size``, halved, with ``train.total_batch_size`` kept by raising gradient
   accumulation (a preset that left total_batch_size at 0 gets it set to the old tokens per step, so
   the optimisation is unchanged);
2. ``data.seq_len``, halved (down to 64 tokens, or the preset's own if smaller), each time with the
   largest batch (up to the preset's) that then fits;
3. ``model.d_model``, stepped down through widths that keep n_heads (and RoPE / BDH neurons) valid,
   with the largest context and then the largest batch that fit at that width.

The search is lexicographic — keep the width if at all possible, then the context, then the batch — and
every candidate must pass ``tuiLM.config.validate.validate`` (budget warning aside).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import Any

from ..models.registry import family
from .core import Estimate, estimate

MIN_SEQ_LEN = 64
MIN_WIDTH_STEP = 64  # prefer widths on a multiple of 64 when the preset's own width is one


@dataclass
class FitResult:
    """Overrides that fit (``changes`` empty when the preset already fits) and the estimate with them."""

    fits: bool
    changes: list[str]  # "section.key=value", ready for --set
    estimate: Estimate  # with the changes applied (the smallest configuration tried when nothing fits)
    budget_bytes: int
    tried: int = 0  # configurations estimated
    reason: str = ""  # why nothing fits, when fits is False
    values: dict[str, Any] = field(default_factory=dict)  # the changes as typed values

    def command(self, preset_ref: str = "PRESET") -> str:
        """``tuilm run PRESET --set a=1 --set b=2``."""
        return " ".join(["tuilm run", preset_ref] + [f"--set {c}" for c in self.changes])


def _valid(preset: Any) -> bool:
    from ..config.validate import validate  # stdlib-only; late import keeps this module light

    return not any(p.is_error for p in validate(preset, with_budget=False))


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _batches(b0: int, units: int) -> list[int]:
    """Device batch sizes to try at one context length, largest first: b0 halved down to 1, each
    snapped to the largest divisor of ``units`` (sequences per optimizer step per device) below it."""
    out: list[int] = []
    b = b0
    while b >= 1:
        snapped = next(d for d in range(min(b, units), 0, -1) if units % d == 0)
        if snapped not in out:
            out.append(snapped)
        if b == 1:
            break
        b //= 2
    return out


def _seq_lens(t0: int, tokens: int, world: int) -> list[int]:
    """Context lengths to try, largest first: t0 halved while it divides the step and stays >= 64."""
    out, t = [t0], t0
    floor = min(t0, MIN_SEQ_LEN)
    while t % 2 == 0 and t // 2 >= floor and tokens % (t // 2 * world) == 0:
        t //= 2
        out.append(t)
    return out


def gpt_width_step(m: Any) -> int:
    """d_model must divide into n_heads heads, of even size under RoPE."""
    return m.n_heads * (2 if m.pos == "rope" else 1)


def bdh_width_step(m: Any) -> int:
    """N = mult * D / heads must be a whole, even number."""
    return 2 * m.n_heads // gcd(2 * m.n_heads, m.bdh_mult)


def _widths(preset: Any) -> list[int]:
    """Smaller d_model values that keep the model valid, largest first (the family's width step)."""
    m = preset.model
    step = family(m.arch).width_step(m)
    if m.d_model % MIN_WIDTH_STEP == 0:
        step = step * MIN_WIDTH_STEP // gcd(step, MIN_WIDTH_STEP)
    return list(range((m.d_model - 1) // step * step, 0, -step))


def fit(preset: Any, budget_bytes: int | float, *, vocab_size: int | None = None, world_size: int = 1,
        device: str | None = None, dtype: str | None = None) -> FitResult:
    """Propose overrides that fit ``budget_bytes`` per device (see the module doc for the order)."""
    budget = int(budget_bytes)
    world = max(1, int(world_size))

    def est(p: Any) -> Estimate:
        return estimate(p, vocab_size, world, device=device, dtype=dtype)

    base = est(preset)
    if base.fits(budget):
        return FitResult(True, [], base, budget, tried=1)

    t = preset.train
    b0, t0 = t.device_batch_size, preset.data.seq_len
    tokens = t.total_batch_size or b0 * t0 * world  # keep the optimisation: tokens per optimizer step
    tried = 1
    smallest = base

    def candidates(width: int | None):
        for T in _seq_lens(t0, tokens, world):
            units = tokens // (T * world)
            for B in _batches(min(b0, units), units):
                changes: dict[str, Any] = {}
                if width is not None:
                    changes["model.d_model"] = width
                if T != t0:
                    changes["data.seq_len"] = T
                    if preset.eval.stride > T:
                        changes["eval.stride"] = T
                if B != b0:
                    changes["train.device_batch_size"] = B
                if changes and (B != b0 or T != t0) and t.total_batch_size != tokens:
                    changes["train.total_batch_size"] = tokens
                yield changes

    widths = _widths(preset)
    # Memory grows with the width at any context and batch, so the widths whose smallest configuration
    # (shortest context, batch 1) does not fit are skipped by bisection: a 65536-wide model has 1,024
    # widths below it, 8,000 configurations that took minutes to estimate one by one.
    lo, hi = 0, len(widths)  # widths[:lo] are known not to fit
    while lo < hi:
        mid = (lo + hi) // 2
        e = est(preset.with_values(list(candidates(widths[mid]))[-1]))
        tried += 1
        smallest = e if e.total_bytes < smallest.total_bytes else smallest
        lo, hi = (lo, mid) if e.fits(budget) else (mid + 1, hi)
    for width in [None] + widths[lo:]:
        for changes in candidates(width):
            if not changes:
                continue
            p = preset.with_values(changes)
            e = est(p)
            tried += 1
            if e.total_bytes < smallest.total_bytes:
                smallest = e
            if e.fits(budget) and _valid(p):
                return FitResult(True, [f"{k}={_fmt(v)}" for k, v in changes.items()], e, budget,
                                 tried=tried, values=changes)
    floor = smallest.parts.get("overhead", 0) + smallest.parts["weights"]
    reason = (f"the smallest configuration tried needs {smallest.total_bytes / 2**30:.2f} GiB"
              + (" (the fixed CUDA overhead alone is 0.5 GiB)" if floor > budget else ""))
    return FitResult(False, [], smallest, budget, tried=tried, reason=reason)
