"""BDH, Pathway's "Baby Dragon Hatchling" (arXiv 2509.26507), as the reference pathwaycom/bdh bdh.py.

One set of weights reused at every layer: the depth changes compute, not size. Each layer lifts the
D-dim state into nh·N non-negative "neurons" (N = mult·D / nh per head), runs unnormalised causal
linear attention with the neurons as both query and key, gates the result by a second sparse
lift, and projects back down. Norms are weightless LayerNorms, post-norm residual, one dropout site.

Shapes: B batch, T time, D n_embd, nh heads, N neurons per head, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import collect_roles, config_from_section, default, lm_loss


@dataclass
class BDHConfig:
    vocab_size: int  # from the data, not the [model] section
    max_seq_len: int  # from the data, not the [model] section
    n_layers: int = default("n_layers")
    d_model: int = default("d_model")
    n_heads: int = default("n_heads")
    bdh_mult: int = default("bdh_mult")
    dropout: float = default("dropout")

    @classmethod
    def from_section(cls, section, vocab_size: int, max_seq_len: int):
        return config_from_section(cls, section, vocab_size=vocab_size, max_seq_len=max_seq_len)

    @property
    def neurons(self) -> int:
        return self.bdh_mult * self.d_model // self.n_heads

    def check(self) -> None:
        if (self.bdh_mult * self.d_model) % self.n_heads:
            raise ValueError(f"bdh_mult x d_model ({self.bdh_mult * self.d_model}) must be divisible "
                             f"by n_heads ({self.n_heads})")
        if self.neurons % 2:
            raise ValueError(f"neurons per head N = {self.neurons} must be even for RoPE")


def rope_freqs(N: int, theta: float = 2.0**16) -> torch.Tensor:
    """Turns per position of each neuron dim, (N,): pairs (2k, 2k+1) share theta^(-2k/N) / 2π."""
    pair_start = torch.arange(N, dtype=torch.float32).div(2, rounding_mode="floor") * 2
    return 1.0 / theta ** (pair_start / N) / (2 * math.pi)


def rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs of x (B, nh, T, N) by the angle t·theta^(-2k/N).

    The phase is kept in turns and reduced mod 1 before scaling by 2π, as the reference does, so
    that cos / sin stay accurate at large t in fp32.
    """
    T = x.size(-2)
    turns = torch.arange(T, device=x.device, dtype=torch.float32).view(-1, 1) * freqs  # (T, N)
    angle = (turns % 1) * (2 * math.pi)
    x_rot = torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).view(x.shape)  # (-x1, x0, -x3, x2, ...)
    return (x * angle.cos()).to(x.dtype) + (x_rot * angle.sin()).to(x.dtype)


def linear_attention(qk: torch.Tensor, v: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Strictly causal, unnormalised attention with query = key: (B,nh,T,N), (B,1,T,D) -> (B,nh,T,D).

    tril(-1): a token does not see itself. No softmax and no scaling, so this is linear attention;
    like the reference it builds the full (T, T) score matrix.
    """
    r = rope(qk, freqs)
    scores = (r @ r.transpose(-1, -2)).tril(diagonal=-1)  # (B, nh, T, T)
    return scores @ v


class BDH(nn.Module):
    ROLES = {"encoder": "matrix", "encoder_v": "matrix", "decoder": "matrix", "lm_head": "head"}

    def __init__(self, config: BDHConfig):
        super().__init__()
        config.check()
        self.config = config
        self.max_seq_len = config.max_seq_len
        D, nh, N, V = config.d_model, config.n_heads, config.neurons, config.vocab_size
        self.embed = nn.Embedding(V, D)
        self.encoder = nn.Parameter(torch.empty(nh, D, N))  # lifts x to the attention neurons
        self.encoder_v = nn.Parameter(torch.empty(nh, D, N))  # lifts the attention read-out
        self.decoder = nn.Parameter(torch.empty(nh * N, D))  # back down to D
        self.lm_head = nn.Parameter(torch.empty(D, V))  # not tied
        self.drop = nn.Dropout(config.dropout)
        self.register_buffer("freqs", rope_freqs(N), persistent=False)
        for p in self.parameters():
            nn.init.normal_(p, mean=0.0, std=0.02)

    def ln(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.size(-1),), eps=1e-5)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        D, nh, N = self.config.d_model, self.config.n_heads, self.config.neurons
        x = self.ln(self.embed(idx)).unsqueeze(1)  # (B, 1, T, D)
        for _ in range(self.config.n_layers):  # the same weights at every layer
            xs = F.relu(x @ self.encoder)  # (B, nh, T, N) sparse, non-negative
            a = self.ln(linear_attention(xs, x, self.freqs))  # (B, nh, T, D)
            ys = F.relu(a @ self.encoder_v)  # (B, nh, T, N)
            xy = self.drop(xs * ys)  # (B, nh, T, N)
            y = self.ln(xy.transpose(1, 2).reshape(B, 1, T, nh * N) @ self.decoder)  # (B, 1, T, D)
            x = self.ln(x + y)  # post-norm residual
        logits = (x.view(B, T, D) @ self.lm_head).float()  # (B, T, V)
        return logits, lm_loss(logits, targets)

    @torch.no_grad()
    def diagnostics(self, idx: torch.Tensor) -> dict[str, float]:
        return {}

    def param_roles(self) -> dict[str, str]:
        return collect_roles(self)
