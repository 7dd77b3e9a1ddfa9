"""Learning-rate and Muon-momentum schedules: pure functions of the step (so resume needs no state).

``step`` is the 0-based index of the optimizer step about to be taken; a run takes steps
0 .. max_steps - 1.
"""

from __future__ import annotations

import math
from typing import Any


def lr_factor(step: int, sched: Any, max_steps: int) -> float:
    """Multiplier on every group's peak learning rate (``preset.schedule``)."""
    warm = sched.warmup_steps
    warm_f = (step + 1) / warm if warm and step < warm else 1.0
    if sched.decay == "warmdown":
        n = sched.warmdown_steps
        start = max_steps - n
        down_f = (max_steps - step) / n if n and step >= start else 1.0
        return min(warm_f, down_f)
    if step < warm:
        return warm_f
    if sched.decay == "constant":
        return 1.0
    span = max(1, max_steps - 1 - warm)
    progress = min(1.0, (step - warm) / span)
    lo = sched.min_lr_frac
    if sched.decay == "cosine":
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if sched.decay == "linear":
        return 1.0 - (1.0 - lo) * progress
    raise ValueError(f"unknown schedule.decay {sched.decay!r}")


def muon_momentum(step: int, optim: Any) -> float:
    """Linear warm-up from ``muon_momentum_start`` to ``muon_momentum`` over ``muon_momentum_warmup`` steps."""
    n = optim.muon_momentum_warmup
    if n <= 0 or step >= n:
        return optim.muon_momentum
    frac = step / n
    return (1.0 - frac) * optim.muon_momentum_start + frac * optim.muon_momentum
