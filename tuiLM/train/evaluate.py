"""Validation loss and bits per byte (specs/training.md).

val_loss = sum of cross-entropy nats over the scored targets / their number;
val_bpb  = sum of nats / (ln 2 * sum of UTF-8 bytes of the scored targets).

Windows (``stride_windows``): seq_len inputs each, a new window every ``stride`` tokens
(``stride = 0``: every seq_len, i.e. non-overlapping). The first window of a part scores all its
targets, every later one only the targets no earlier window scored (the last ``stride`` in the
regular case), and a final window aligned to the end picks up the tail: every target token of the
split is scored exactly once, each with as much context as the stride allows.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .tokenizers import Tokenizer


def stride_windows(n_tokens: int, seq_len: int, stride: int = 0) -> list[tuple[int, int, int]]:
    """``(start, length, score_from)`` for a part of ``n_tokens`` tokens.

    The window's inputs are tokens[start : start+length], its targets tokens[start+1 : start+length+1];
    positions ``score_from .. length-1`` are scored.
    """
    n_targets = n_tokens - 1
    if n_targets <= 0:
        return []
    length = min(seq_len, n_targets)
    stride = min(stride or seq_len, length)
    out = [(0, length, 0)]
    covered = length  # targets 1 .. covered are scored (target index = token index)
    nxt = stride
    while covered < n_targets:
        start = min(nxt, n_targets - length)
        out.append((start, length, covered - start))
        covered = start + length
        nxt += stride
    return out


@dataclass
class ByteTable:
    """Per-token-id byte counts on a device: bytes(t | prev) = base[t] + (lead[t] and not boundary[prev])."""

    base: torch.Tensor
    lead: torch.Tensor
    boundary: torch.Tensor
    known: bool

    @classmethod
    def from_tokenizer(cls, tok: Tokenizer, vocab_size: int, device: Any = "cpu") -> "ByteTable":
        pad = vocab_size - tok.vocab_size

        def t(values: list, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(list(values) + [0] * pad, dtype=dtype, device=device)

        return cls(t(tok.base_bytes(), torch.int64), t(tok.leading_space(), torch.bool),
                   t(tok.boundary(), torch.bool), tok.bytes_known)

    def count(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.base[y] + (self.lead[y] & ~self.boundary[x]).long()


def token_nats(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: Any = None) -> torch.Tensor:
    """Cross-entropy (nats) of every target position, shape (B, T), in fp32."""
    with autocast or nullcontext():
        logits, _ = model(x, y)
    if logits.shape[:2] != y.shape:
        raise RuntimeError(f"model returned logits of shape {tuple(logits.shape)} for targets {tuple(y.shape)}")
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none").view_as(y)


@torch.no_grad()
def evaluate(model: torch.nn.Module, parts: list[np.ndarray], table: ByteTable, seq_len: int, batch_size: int,
             max_batches: int = 0, stride: int = 0, device: Any = "cpu", autocast: Any = None,
             rank: int = 0, world: int = 1, all_reduce: Callable[[torch.Tensor], None] | None = None) -> dict[str, float]:
    """Score the validation parts. ``max_batches`` (0 = all) limits the windows to the first
    ``max_batches * batch_size`` whatever the number of ranks (so runs on 1 and N devices score the
    same tokens); rank r takes windows r, r + world, ..."""
    was_training = model.training
    model.eval()
    windows = [(i, s, n, f) for i, p in enumerate(parts) for s, n, f in stride_windows(len(p), seq_len, stride)]
    if max_batches:
        windows = windows[: max_batches * batch_size]
    mine = windows[rank::world]
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # nats, tokens, bytes
    try:
        i = 0
        while i < len(mine):
            n = mine[i][2]
            j = i + 1  # the leading run of equal-length windows stacks into one batch
            while j < len(mine) and j - i < batch_size and mine[j][2] == n:
                j += 1
            batch, i = mine[i:j], j
            rows = np.stack([np.asarray(parts[p][s:s + n + 1]) for p, s, _, _ in batch]).astype(np.int64)
            t = torch.from_numpy(rows).to(device)
            x, y = t[:, :-1], t[:, 1:]
            nats = token_nats(model, x, y, autocast)
            mask = torch.arange(n, device=device)[None, :] >= torch.tensor([w[3] for w in batch], device=device)[:, None]
            sums[0] += nats[mask].double().sum()
            sums[1] += mask.sum()
            sums[2] += table.count(x, y)[mask].sum()
    finally:  # an exception mid-evaluation must not leave the model in eval mode
        if was_training:
            model.train()
    if all_reduce is not None:
        all_reduce(sums)
    nats, tokens, nbytes = sums.tolist()
    val_loss = nats / tokens if tokens else float("nan")
    val_bpb = (nats / nbytes) / math.log(2) if nbytes and table.known else float("nan")
    return {"val_loss": val_loss, "val_bpb": val_bpb, "val_tokens": int(tokens), "val_bytes": int(nbytes)}
