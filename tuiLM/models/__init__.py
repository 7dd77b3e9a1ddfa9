"""Model families and their registry.

Every model has ``forward(idx, targets=None) -> (logits, loss)`` (logits (B, T, V) in fp32, loss the
mean cross-entropy in nats or None), ``diagnostics(idx) -> dict[str, float]`` (cheap, no grad, fp32),
``param_roles() -> dict[str, str]`` (see ``layers.ROLES``) and a ``max_seq_len`` attribute.

Torch is imported only when a model is built, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

ARCHS = ("gpt", "mhc", "bdh")


def build_model(model_cfg: Any, vocab_size: int, max_seq_len: int) -> "nn.Module":
    """The model for a preset's ``model`` section (attribute access: ``model_cfg.d_model`` ...)."""
    arch = model_cfg.arch
    if arch == "gpt":
        from .gpt import GPT, GPTConfig

        return GPT(GPTConfig.from_section(model_cfg, vocab_size, max_seq_len))
    if arch == "mhc":
        from .mhc import MHC, MHCConfig

        return MHC(MHCConfig.from_section(model_cfg, vocab_size, max_seq_len))
    if arch == "bdh":
        from .bdh import BDH, BDHConfig

        return BDH(BDHConfig.from_section(model_cfg, vocab_size, max_seq_len))
    raise ValueError(f"unknown model.arch {arch!r} (expected one of {', '.join(ARCHS)})")


__all__ = ["ARCHS", "build_model"]
