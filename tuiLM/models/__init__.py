"""Model families and their registry.

Every model has ``forward(idx, targets=None) -> (logits, loss)`` (logits (B, T, V) in fp32, loss the
mean cross-entropy in nats or None), ``diagnostics(idx) -> dict[str, float]`` (cheap, no grad, fp32),
``param_roles() -> dict[str, str]`` (see ``layers.ROLES``) and a ``max_seq_len`` attribute.

Each family is a record in ``registry`` (model and config classes, estimator, validation, panels,
fit lever). Torch is imported only when a model is built, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .registry import family

if TYPE_CHECKING:
    from torch import nn


def build_model(model_cfg: Any, vocab_size: int, max_seq_len: int) -> "nn.Module":
    """The model for a preset's ``model`` section (attribute access: ``model_cfg.d_model`` ...)."""
    return family(model_cfg.arch).build(model_cfg, vocab_size, max_seq_len)


__all__ = ["build_model"]
