"""Optimizers: AdamW with decay groups, or Muon for hidden matrices + Adam for the rest.

Parameter roles come from the model (``model.param_roles()``: embed | head | matrix | scalar | mhc):

* ``optim.name = "adamw"``: one AdamW, weight decay on embed / head / matrix, none on scalar / mhc.
* ``optim.name = "muon"``: Muon (specs/training.md) on ``matrix`` only, at ``matrix_lr``; Adam on
  ``embed`` (``embed_lr``, also a tied head), ``head`` (``head_lr``) and ``scalar`` + ``mhc``
  (``scalar_lr``, no decay).

Every param group carries ``base_lr``; the schedule sets ``lr = base_lr * factor`` each step.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

ROLES = ("embed", "head", "matrix", "scalar", "mhc")
DECAY_ROLES = ("embed", "head", "matrix")
NS_COEFFS = (3.4445, -4.7750, 2.0315)


@torch.no_grad()
def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype | None = None
                  ) -> torch.Tensor:
    """Approximately orthogonalise a 2-D matrix (U V^T of its SVD): in bf16 on a GPU, as Muon does; in
    fp32 on the CPU, where bf16 matmuls have no hardware path (5 iterations on a 768 x 3072 matrix, one
    thread: 111 s in bf16 against 2.8 s in fp32, measured on the CI machine)."""
    a, b, c = NS_COEFFS
    x = g.to(dtype or (torch.bfloat16 if g.is_cuda else torch.float32))
    transposed = x.size(-2) > x.size(-1)
    if transposed:  # iterate on the wide orientation: X X^T is the smaller Gram matrix
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if transposed else x


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz, for 2-D hidden matrices.

    m = mu*m + g; g' = g + mu*m (Nesterov); o = NS(g'); p *= 1 - lr*wd; p -= lr * o * sqrt(max(1, rows/cols)).
    A tensor with more than two dimensions is a stack of matrices over its last two dimensions.
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.95, weight_decay: float = 0.0,
                 ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            lr, mu, wd, steps = group["lr"], group["momentum"], group["weight_decay"], group["ns_steps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.mul_(mu).add_(g)
                g = g.add(buf, alpha=mu)
                # a stack of matrices (BDH's per-head (nh, D, N) encoders) is orthogonalised matrix by
                # matrix: flattening it to (nh, D*N) would orthogonalise nh long rows instead
                g3 = g if g.ndim == 2 else g.reshape(-1, *g.shape[-2:])
                rows, cols = g3.shape[-2:]
                update = newton_schulz(g3, steps).view_as(p)
                if wd:
                    p.mul_(1.0 - lr * wd)
                p.add_(update.to(p.dtype), alpha=-lr * math.sqrt(max(1.0, rows / cols)))


def split_params(model: nn.Module, optim: Any) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Named trainable parameters per group: adamw -> decay / no_decay; muon -> muon / embed / head / scalar."""
    roles = model.param_roles()
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        role = roles.get(name)
        if role not in ROLES:
            raise ValueError(f"parameter {name!r} has role {role!r}; expected one of {ROLES}")
        if optim.name == "adamw":
            key = "decay" if role in DECAY_ROLES else "no_decay"
        else:
            key = {"matrix": "muon", "embed": "embed", "head": "head"}.get(role, "scalar")
        groups.setdefault(key, []).append((name, p))
    return groups


class OptimizerSet:
    """One or two torch optimizers driven as one (Muon + Adam), with a checkpointable state."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.optimizers.values() for g in o.param_groups]

    def set_schedule(self, lr_factor: float, momentum: float | None = None) -> None:
        for g in self.param_groups:
            g["lr"] = g["base_lr"] * lr_factor
        if momentum is not None and "muon" in self.optimizers:
            for g in self.optimizers["muon"].param_groups:
                g["momentum"] = momentum

    def zero_grad(self) -> None:
        for o in self.optimizers.values():
            o.zero_grad(set_to_none=True)

    def step(self, scaler: Any = None) -> None:
        for o in self.optimizers.values():
            if scaler is not None:
                scaler.step(o)
            else:
                o.step()

    def unscale_(self, scaler: Any) -> None:
        for o in self.optimizers.values():
            scaler.unscale_(o)

    def state_dict(self) -> dict[str, Any]:
        return {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.optimizers):
            raise ValueError(f"checkpoint optimizers {sorted(state)} do not match {sorted(self.optimizers)}")
        for k, o in self.optimizers.items():
            o.load_state_dict(state[k])


def _adamw(groups: list[dict[str, Any]], optim: Any, device_type: str) -> torch.optim.Optimizer:
    kwargs = dict(betas=(optim.beta1, optim.beta2), eps=optim.eps)
    if device_type in ("cuda", "cpu"):
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            pass
    return torch.optim.AdamW(groups, **kwargs)


def make_optimizer(model: nn.Module, optim: Any, device_type: str = "cpu") -> OptimizerSet:
    """Build the optimizer for ``model`` from ``preset.optim``."""
    split = split_params(model, optim)
    wd = optim.weight_decay

    def group(key: str, lr: float, decay: float) -> dict[str, Any]:
        return {"params": [p for _, p in split[key]], "names": [n for n, _ in split[key]], "group": key,
                "lr": lr, "base_lr": lr, "weight_decay": decay}

    if optim.name == "adamw":
        groups = [group(k, optim.lr, wd if k == "decay" else 0.0) for k in ("decay", "no_decay") if k in split]
        return OptimizerSet({"adamw": _adamw(groups, optim, device_type)})
    if optim.name != "muon":
        raise ValueError(f"unknown optim.name {optim.name!r}")
    out: dict[str, torch.optim.Optimizer] = {}
    if "muon" in split:
        g = group("muon", optim.matrix_lr, wd)
        g.update(momentum=optim.muon_momentum_start, ns_steps=optim.muon_steps)
        out["muon"] = Muon([g], lr=optim.matrix_lr)
    lrs = {"embed": (optim.embed_lr, wd), "head": (optim.head_lr, wd), "scalar": (optim.scalar_lr, 0.0)}
    adam_groups = [group(k, *lrs[k]) for k in ("embed", "head", "scalar") if k in split]
    if adam_groups:
        out["adam"] = _adamw(adam_groups, optim, device_type)
    return OptimizerSet(out)
