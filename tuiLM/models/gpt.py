"""GPT: a decoder-only transformer whose features are switched by preset fields.

The plain setting is a pre-norm nanoGPT (learned or rotary positions, GELU MLP, LayerNorm). The
parameter-golf setting adds what the challenge's train_gpt.py uses: GQA, relu² MLP, weightless RMS
norms, QK norm, logit soft cap, BigramHash, and with ``golf_block`` its block extras (U-Net skips,
residual mix with the embedding, per-block branch scales, per-head query gain).

The file reads top to bottom: config, norms and rotary embedding, attention, MLP, BigramHash, the
block, the model. Shapes: B batch, T time, D d_model, H query heads, KV key/value heads, hd head
dim (D / H), F MLP width, V vocabulary, L layers, K bigram buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import collect_roles, config_from_section, default, lm_loss


@dataclass
class GPTConfig:
    vocab_size: int  # from the data, not the [model] section
    max_seq_len: int  # from the data, not the [model] section
    n_layers: int = default("n_layers")
    d_model: int = default("d_model")
    n_heads: int = default("n_heads")
    n_kv_heads: int = default("n_kv_heads")  # 0 = n_heads
    d_ff: int = default("d_ff")  # 0 = int(mlp_mult * d_model)
    mlp_mult: float = default("mlp_mult")
    activation: str = default("activation")  # gelu | relu2 | swiglu
    norm: str = default("norm")  # layernorm | rmsnorm
    norm_weight: bool = default("norm_weight")
    qk_norm: bool = default("qk_norm")
    pos: str = default("pos")  # rope | learned
    rope_base: float = default("rope_base")
    tie_embeddings: bool = default("tie_embeddings")
    logit_softcap: float = default("logit_softcap")  # 0 = off
    bigram_buckets: int = default("bigram_buckets")  # 0 = off
    bigram_dim: int = default("bigram_dim")
    golf_block: bool = default("golf_block")
    qk_gain_init: float = default("qk_gain_init")
    dropout: float = default("dropout")

    @classmethod
    def from_section(cls, section, vocab_size: int, max_seq_len: int):
        return config_from_section(cls, section, vocab_size=vocab_size, max_seq_len=max_seq_len)

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden(self) -> int:
        return self.d_ff or int(self.mlp_mult * self.d_model)

    def check(self) -> None:
        """The structural rules validation also enforces; raised here for models built directly."""
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.kv_heads})")
        if self.pos == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {self.head_dim}")
        if self.hidden < 1:
            raise ValueError("the MLP hidden width is 0")
        if self.bigram_buckets == 1:
            raise ValueError("BigramHash needs at least 2 buckets (one is reserved)")
        for name, value, choices in (("activation", self.activation, ("gelu", "relu2", "swiglu")),
                                     ("norm", self.norm, ("layernorm", "rmsnorm")),
                                     ("pos", self.pos, ("rope", "learned"))):
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def make_norm(kind: str, dim: int, weight: bool) -> nn.Module:
    """LayerNorm (gain + bias) or RMSNorm (gain); ``weight=False`` gives the parameter-free form."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, elementwise_affine=weight, bias=weight)
    return nn.RMSNorm(dim, elementwise_affine=weight)


class Rotary(nn.Module):
    """Rotary position embedding over the head dim, half-split like the golf reference: channel i
    rotates with channel i + hd/2 by the angle t · base^(-2i/hd)."""

    def __init__(self, head_dim: int, base: float, max_seq_len: int):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (hd/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        cos, sin = self._tables(max_seq_len, inv_freq)
        # Tables for the training length are cached; longer inputs (evaluation, generation) get
        # fresh ones. Not persistent: they are derived, and checkpoints stay free of them.
        self.register_buffer("cos", cos, persistent=False)  # (T, hd/2)
        self.register_buffer("sin", sin, persistent=False)

    @staticmethod
    def _tables(T: int, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = torch.outer(torch.arange(T, dtype=torch.float32, device=inv_freq.device), inv_freq)
        return angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, h, T, hd)
        T = x.size(-2)
        if T <= self.cos.size(0):
            cos, sin = self.cos[:T], self.sin[:T]
        else:
            cos, sin = self._tables(T, self.inv_freq)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    ROLES = {"q_gain": "scalar"}

    def __init__(self, config: GPTConfig):
        super().__init__()
        D, H, KV, hd = config.d_model, config.n_heads, config.kv_heads, config.head_dim
        self.n_heads, self.kv_heads, self.head_dim = H, KV, hd
        self.c_q = nn.Linear(D, H * hd, bias=False)
        self.c_k = nn.Linear(D, KV * hd, bias=False)  # GQA: KV <= H heads, shared by H / KV queries
        self.c_v = nn.Linear(D, KV * hd, bias=False)
        self.c_proj = nn.Linear(H * hd, D, bias=False)
        self.rotary = Rotary(hd, config.rope_base, config.max_seq_len) if config.pos == "rope" else None
        self.qk_norm = config.qk_norm
        # golf_block: a learned per-head query gain restores the logit scale QK norm removes.
        self.q_gain = nn.Parameter(torch.full((H,), config.qk_gain_init)) if config.golf_block else None
        self.attn_dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, D)
        B, T, _ = x.shape
        q = self.c_q(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.c_k(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.c_v(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        if self.qk_norm:
            q = F.rms_norm(q, (self.head_dim,))
            k = F.rms_norm(k, (self.head_dim,))
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if self.q_gain is not None:
            q = q * self.q_gain.to(q.dtype)[None, :, None, None]
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.attn_dropout if self.training else 0.0,
            enable_gqa=self.kv_heads != self.n_heads)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        D, Fh = config.d_model, config.hidden
        self.activation = config.activation
        self.c_fc = nn.Linear(D, Fh, bias=False)
        # SwiGLU: silu(gate) * up; the third matrix is the price of the gate.
        self.c_gate = nn.Linear(D, Fh, bias=False) if config.activation == "swiglu" else None
        self.c_proj = nn.Linear(Fh, D, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, D)
        h = self.c_fc(x)  # (B, T, F)
        if self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "relu2":
            h = F.relu(h).square()
        else:
            h = F.silu(self.c_gate(x)) * h
        return self.drop(self.c_proj(h))


def bigram_hash(idx: torch.Tensor, buckets: int) -> torch.Tensor:
    """Bucket of each (previous, current) token pair, (B, T) -> (B, T).

    h[0] = K-1 (reserved: no previous token); h[t] = ((36313·tok[t]) XOR (27191·tok[t-1])) mod (K-1).
    In int64 so the products never wrap, whatever the vocabulary size.
    """
    t = idx.long()
    mod = buckets - 1
    first = torch.full_like(t[:, :1], mod)
    rest = torch.bitwise_xor(36313 * t[:, 1:], 27191 * t[:, :-1]) % mod
    return torch.cat((first, rest), dim=1)


class BigramHash(nn.Module):
    """A second embedding indexed by a hash of the token pair: e = proj(table[h]) · scale (B, T, D).

    The table starts at zero, so the module starts as a no-op. The projection (omitted when
    bigram_dim == d_model) gets a small normal init rather than zero: with both zero, neither gets a
    gradient (d/dtable = projᵀ·g = 0 and d/dproj = g·table = 0) and the module would never train.
    """

    ROLES = {"scale": "scalar"}

    def __init__(self, buckets: int, dim: int, d_model: int):
        super().__init__()
        self.buckets = buckets
        self.table = nn.Embedding(buckets, dim)
        self.proj = nn.Linear(dim, d_model, bias=False) if dim != d_model else None
        self.scale = nn.Parameter(torch.tensor(0.05))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        e = self.table(bigram_hash(idx, self.buckets))  # (B, T, d_b)
        if self.proj is not None:
            e = self.proj(e)  # (B, T, D)
        return e * self.scale.to(e.dtype)


class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)). Each branch is exposed on its own
    (``attn_branch``, ``mlp_branch``) so that mHC can wire the same sub-layers between its streams."""

    ROLES = {"attn_scale": "scalar", "mlp_scale": "scalar", "resid_mix": "scalar"}

    def __init__(self, config: GPTConfig):
        super().__init__()
        D = config.d_model
        self.attn_norm = make_norm(config.norm, D, config.norm_weight)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = make_norm(config.norm, D, config.norm_weight)
        self.mlp = MLP(config)
        self.golf = config.golf_block
        if self.golf:
            self.attn_scale = nn.Parameter(torch.ones(D))
            self.mlp_scale = nn.Parameter(torch.ones(D))
            # Row 0 weighs the running residual, row 1 the normalised embedding x0.
            self.resid_mix = nn.Parameter(torch.stack((torch.ones(D), torch.zeros(D))))  # (2, D)

    def attn_branch(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(self.attn_norm(x))
        return y * self.attn_scale.to(y.dtype) if self.golf else y

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.mlp_norm(x))
        return y * self.mlp_scale.to(y.dtype) if self.golf else y

    def forward(self, x: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:  # (B, T, D)
        if self.golf:
            mix = self.resid_mix.to(x.dtype)
            x = mix[0] * x + mix[1] * x0
        x = x + self.attn_branch(x)
        x = x + self.mlp_branch(x)
        return x


class GPT(nn.Module):
    ROLES = {"skip_weights": "scalar"}

    def __init__(self, config: GPTConfig):
        super().__init__()
        config.check()
        self.config = config
        self.max_seq_len = config.max_seq_len
        D, V, L = config.d_model, config.vocab_size, config.n_layers
        self.tok_emb = nn.Embedding(V, D)
        self.pos_emb = nn.Embedding(config.max_seq_len, D) if config.pos == "learned" else None
        self.bigram = (BigramHash(config.bigram_buckets, config.bigram_dim, D)
                       if config.bigram_buckets > 0 else None)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([self.make_block(i) for i in range(L)])
        # golf_block U-Net: the first L//2 blocks push their outputs, the later blocks pop them
        # (last in, first out) and add them back with a learned per-channel weight.
        self.n_encoder = L // 2 if config.golf_block else 0
        self.skip_weights = nn.Parameter(torch.ones(self.n_encoder, D)) if self.n_encoder else None
        self.norm_f = make_norm(config.norm, D, config.norm_weight)
        self.lm_head = None if config.tie_embeddings else nn.Linear(D, V, bias=False)
        self._init_weights()

    def make_block(self, layer: int) -> nn.Module:
        return Block(self.config)

    def _init_weights(self) -> None:
        c = self.config
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        for block in self.blocks:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                if c.golf_block:  # as the reference: every block starts as the identity
                    nn.init.zeros_(proj.weight)
                else:  # GPT-2: keep the residual stream's variance from growing with depth
                    nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layers))
        if self.bigram is not None:
            nn.init.zeros_(self.bigram.table.weight)
        if c.golf_block:
            if c.tie_embeddings:  # the reference's tied_embed_init_std
                nn.init.normal_(self.tok_emb.weight, mean=0.0, std=0.005)
            else:
                nn.init.normal_(self.tok_emb.weight, mean=0.0, std=1.0)
                nn.init.zeros_(self.lm_head.weight)

    # -- forward, in three stages that mHC reuses ------------------------------------------------

    def embed(self, idx: torch.Tensor) -> torch.Tensor:  # idx (B, T) -> x (B, T, D)
        T = idx.size(1)
        if self.pos_emb is not None and T > self.max_seq_len:
            raise ValueError(f"sequence of {T} tokens exceeds max_seq_len {self.max_seq_len} "
                             f"(learned positions)")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx.device))
        if self.bigram is not None:
            x = x + self.bigram(idx)
        if self.config.golf_block:
            x = F.rms_norm(x, (x.size(-1),))
        return self.drop(x)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        x0 = x
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            if i >= self.n_encoder and skips:
                x = x + self.skip_weights[i - self.n_encoder].to(x.dtype) * skips.pop()
            x = block(x, x0)
            if i < self.n_encoder:
                skips.append(x)
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> logits (B, T, V) in fp32
        x = self.norm_f(x)
        logits = F.linear(x, self.tok_emb.weight) if self.lm_head is None else self.lm_head(x)
        logits = logits.float()
        c = self.config.logit_softcap
        if c > 0:
            logits = c * torch.tanh(logits / c)
        return logits

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.trunk(self.embed(idx)))
        return logits, lm_loss(logits, targets)

    # -- what the trainer asks -------------------------------------------------------------------

    @torch.no_grad()
    def diagnostics(self, idx: torch.Tensor) -> dict[str, float]:
        return {}

    def param_roles(self) -> dict[str, str]:
        return collect_roles(self, {"lm_head.weight": "head"})
