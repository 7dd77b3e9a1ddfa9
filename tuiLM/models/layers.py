"""Pieces every model family shares: config from a preset section, parameter roles, the loss.

Parameter roles tell the trainer how to optimise each tensor:
  embed   token / learned-position / bigram tables           AdamW with weight decay (embedding lr)
  head    an untied LM head                                   AdamW with weight decay (head lr)
  matrix  2-D hidden weights (q, k, v, o, MLP, projections)   Muon when optim.name = muon, else AdamW
  scalar  norm gains and biases, golf scales, skip weights    AdamW, no weight decay
  mhc     every hyper-connection coefficient                  AdamW, no weight decay
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config.schema import BY_PATH

ROLES = ("embed", "head", "matrix", "scalar", "mhc")


def default(key: str) -> Any:
    """The schema's default for ``model.<key>``: a model config built without a preset has the same
    values as one built from the default preset (one set of defaults, tuiLM/config/schema.py)."""
    return BY_PATH[f"model.{key}"].default


def config_from_section(cls: type, section: Any, **extra: Any) -> Any:
    """Build the dataclass ``cls`` from a preset section (attribute access), plus ``extra`` fields."""
    values = dict(extra)
    for f in dataclasses.fields(cls):
        if f.name not in values and hasattr(section, f.name):
            values[f.name] = getattr(section, f.name)
    return cls(**values)


def collect_roles(model: nn.Module, by_name: dict[str, str] | None = None) -> dict[str, str]:
    """Map every named parameter of ``model`` to its role.

    A module may declare ``ROLES = {"param_name": role}`` for its own (non-recursive) parameters;
    ``by_name`` overrides full names (e.g. ``{"lm_head.weight": "head"}``). Embeddings are "embed",
    norms "scalar", other Linear weights "matrix". A parameter nothing claims is a bug, not a default.
    """
    by_name = by_name or {}
    roles: dict[str, str] = {}
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        own = getattr(type(module), "ROLES", {})
        for p_name, p in module.named_parameters(recurse=False):
            if id(p) in seen:  # a tied tensor keeps the name named_parameters() gives it first
                continue
            seen.add(id(p))
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if full in by_name:
                role = by_name[full]
            elif p_name in own:
                role = own[p_name]
            elif isinstance(module, nn.Embedding):
                role = "embed"
            elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
                role = "scalar"
            elif isinstance(module, nn.Linear):
                role = "matrix"
            else:
                raise ValueError(f"parameter {full} has no optimizer role")
            roles[full] = role
    missing = {n for n, _ in model.named_parameters()} - set(roles)
    if missing:
        raise ValueError(f"parameters without a role: {sorted(missing)}")
    return roles


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy in nats over all positions (targets of -1 are ignored), computed in fp32."""
    if targets is None:
        return None
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-1)
