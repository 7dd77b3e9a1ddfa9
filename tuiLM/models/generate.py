"""Autoregressive sampling for every model family."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int = 0, seed: int | None = None, vocab_limit: int | None = None,
             on_token: Callable[[int], None] | None = None) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T); returns (B, T + max_new_tokens).

    The context is cropped to the model's ``max_seq_len`` (learned positions cannot go further; for
    RoPE and BDH it bounds the cost). ``top_k`` 0 = the whole vocabulary; ``temperature`` <= 0 picks
    the most likely token. ``seed`` makes the draw reproducible without touching the global RNG.
    The model is run in eval mode and put back in the mode it was in. ``vocab_limit``: ids at or above
    it are never drawn (a model padded beyond its tokenizer's vocabulary has outputs no text maps to).
    ``on_token`` gets each drawn id of the first sequence as it is drawn (``tuilm sample`` streams).
    """
    gen = torch.Generator(device=idx.device)
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    limit = getattr(model, "max_seq_len", None)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            ctx = idx if limit is None or idx.size(1) <= limit else idx[:, -limit:]
            logits, _ = model(ctx)
            logits = logits[:, -1, :].float()  # (B, V)
            if vocab_limit is not None and vocab_limit < logits.size(-1):
                logits[:, vocab_limit:] = float("-inf")
            if temperature <= 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                # in float64 with the max shifted to 0: a tiny temperature (1e-300 is 0 in float32) then
                # sends the others to -inf, a one-hot draw, instead of 0 / 0 = NaN
                logits = logits.double()
                logits = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
                if top_k and top_k < logits.size(-1):
                    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=gen)  # (B, 1)
            idx = torch.cat((idx, nxt), dim=1)
            if on_token is not None:
                on_token(int(nxt[0, 0]))
    finally:
        model.train(was_training)
    return idx
