"""Parameter count, memory model, artifact size and fit suggestions; pure Python, no torch.

``estimate(preset)`` is instant (the TUI form calls it on every keystroke); ``exact`` / ``measure``
(exact.py) run the real model and import torch when called.
"""

from .core import DEVICES, DTYPES, PARTS, Estimate, estimate, resolve_precision
from .params import artifact_bytes, inventory
from .vocab import resolve_vocab

__all__ = ["DEVICES", "DTYPES", "PARTS", "Estimate", "artifact_bytes", "estimate", "inventory",
           "resolve_precision", "resolve_vocab"]
