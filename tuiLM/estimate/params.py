"""The parameter inventory: every tensor the model will hold, with its shape and optimizer role.

Derived from the model section alone (plus vocabulary and context length), so it runs instantly and
without torch. The same inventory feeds the parameter count, the optimizer-state estimate (Muon keeps
one buffer for hidden matrices, Adam two for everything else) and the int8 artifact size. A test
compares it, tensor by tensor shape, with ``tuiLM.models.build_model`` for every architecture.

Roles (the model's ``param_roles()``, tuiLM/models/layers.py):
  embed    token / position / bigram-table embeddings (Adam at the embedding lr)
  head     an untied LM head (Adam at the head lr)
  matrix   hidden matrices: attention q, k, v, o, MLP, bigram projection; BDH encoder, encoder_v,
           decoder (Muon when optim.name = "muon")
  scalar   norm gains and biases, golf scales, residual mix, q gain, skip weights, bigram scale
  mhc      mHC coefficients (b_pre, b_post, b_res, gate, alphas), the dynamic projection phi and the
           stream embedding; always Adam (specs/mhc.md)
Names follow ``named_parameters()`` of the real model so a mismatch is easy to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

from ..models.registry import family

CONTROL_ROLES = ("scalar", "mhc")  # kept fp32 in the artifact when small


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    role: str
    part: str  # the row of the "parameters by part" breakdown

    @property
    def numel(self) -> int:
        return prod(self.shape)


def d_ff(model: Any) -> int:
    """MLP hidden width: d_ff, or int(mlp_mult x d_model) when d_ff = 0 (the model does the same)."""
    return model.d_ff if model.d_ff > 0 else int(model.mlp_mult * model.d_model)


def kv_heads(model: Any) -> int:
    return model.n_kv_heads or model.n_heads


def norm_params(model: Any, width: int) -> list[tuple[str, int]]:
    """(suffix, size) of one norm's parameters: LayerNorm weight + bias, RMSNorm weight, or none."""
    if not model.norm_weight:
        return []
    if model.norm == "layernorm":
        return [("weight", width), ("bias", width)]
    return [("weight", width)]


def inventory(model: Any, vocab_size: int, seq_len: int) -> list[Tensor]:
    """All parameter tensors of the model described by ``model`` (a preset's model section)."""
    return family(model.arch).inventory(model, vocab_size, seq_len)


def bdh_inventory(m: Any, V: int, T: int) -> list[Tensor]:
    D, H = m.d_model, m.n_heads
    N = m.bdh_mult * D // H
    return [
        Tensor("embed.weight", (V, D), "embed", "embedding"),
        Tensor("encoder", (H, D, N), "matrix", "encoder"),
        Tensor("encoder_v", (H, D, N), "matrix", "encoder_v"),
        Tensor("decoder", (H * N, D), "matrix", "decoder"),
        Tensor("lm_head", (D, V), "head", "lm_head"),
    ]


def gpt_inventory(m: Any, V: int, T: int) -> list[Tensor]:
    return _gpt(m, V, T, streams=False)


def mhc_inventory(m: Any, V: int, T: int) -> list[Tensor]:
    """The GPT backbone with hyper-connection coefficients at every site."""
    return _gpt(m, V, T, streams=True)


def _gpt(m: Any, V: int, T: int, streams: bool) -> list[Tensor]:
    D, H, L = m.d_model, m.n_heads, m.n_layers
    KV, hd, F = kv_heads(m), m.d_model // m.n_heads, d_ff(m)
    out: list[Tensor] = [Tensor("tok_emb.weight", (V, D), "embed", "embedding")]
    if m.pos == "learned":
        out.append(Tensor("pos_emb.weight", (T, D), "embed", "embedding"))
    if m.bigram_buckets > 0:
        K, db = m.bigram_buckets, m.bigram_dim
        out.append(Tensor("bigram.table.weight", (K, db), "embed", "bigram"))
        if db != D:
            out.append(Tensor("bigram.proj.weight", (D, db), "matrix", "bigram"))
        out.append(Tensor("bigram.scale", (), "scalar", "bigram"))
    if streams:
        out.extend(_mhc_globals(m))
    for i in range(L):
        b = f"blocks.{i}"
        for norm, hc in (("attn_norm", "hc_attn"), ("mlp_norm", "hc_mlp")):
            out.extend(Tensor(f"{b}.{norm}.{s}", (n,), "scalar", "norms") for s, n in norm_params(m, D))
            if streams:
                out.extend(_mhc_site(m, f"{b}.{hc}"))
        out.append(Tensor(f"{b}.attn.c_q.weight", (H * hd, D), "matrix", "attention"))
        out.append(Tensor(f"{b}.attn.c_k.weight", (KV * hd, D), "matrix", "attention"))
        out.append(Tensor(f"{b}.attn.c_v.weight", (KV * hd, D), "matrix", "attention"))
        out.append(Tensor(f"{b}.attn.c_proj.weight", (D, H * hd), "matrix", "attention"))
        if m.activation == "swiglu":
            out.append(Tensor(f"{b}.mlp.c_gate.weight", (F, D), "matrix", "mlp"))
        out.append(Tensor(f"{b}.mlp.c_fc.weight", (F, D), "matrix", "mlp"))
        out.append(Tensor(f"{b}.mlp.c_proj.weight", (D, F), "matrix", "mlp"))
        if m.golf_block:
            out.append(Tensor(f"{b}.attn_scale", (D,), "scalar", "golf"))
            out.append(Tensor(f"{b}.mlp_scale", (D,), "scalar", "golf"))
            out.append(Tensor(f"{b}.resid_mix", (2, D), "scalar", "golf"))
            out.append(Tensor(f"{b}.attn.q_gain", (H,), "scalar", "golf"))
    if m.golf_block and L // 2 > 0:
        out.append(Tensor("skip_weights", (L // 2, D), "scalar", "golf"))
    out.extend(Tensor(f"norm_f.{s}", (n,), "scalar", "norms") for s, n in norm_params(m, D))
    if not m.tie_embeddings:
        out.append(Tensor("lm_head.weight", (V, D), "head", "lm_head"))
    return out


def _mhc_globals(m: Any) -> list[Tensor]:
    if m.mhc_streams > 1 and m.mhc_stream_embed:  # one stream: nothing to tell apart
        return [Tensor("stream_embed", (m.mhc_streams, m.d_model), "mhc", "mhc")]
    return []


def _mhc_site(m: Any, prefix: str) -> list[Tensor]:
    """One site's coefficients; a single stream is a plain residual and has none."""
    n = m.mhc_streams
    if n == 1:
        return []
    out = [Tensor(f"{prefix}.b_pre", (n,), "mhc", "mhc"),
           Tensor(f"{prefix}.b_post", (n,), "mhc", "mhc"),
           Tensor(f"{prefix}.b_res", (n, n), "mhc", "mhc")]
    if m.mhc_gate:
        out.append(Tensor(f"{prefix}.gate_logit", (), "mhc", "mhc"))
    if m.mhc_mode == "dynamic":
        out.append(Tensor(f"{prefix}.phi", (n * m.d_model, n * n + 2 * n), "mhc", "mhc"))
        out.extend(Tensor(f"{prefix}.alpha_{a}", (), "mhc", "mhc") for a in ("pre", "post", "res"))
    return out


def count(tensors: list[Tensor]) -> int:
    return sum(t.numel for t in tensors)


def by_part(tensors: list[Tensor]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tensors:
        out[t.part] = out.get(t.part, 0) + t.numel
    return out


# -- the int8 artifact (specs/training.md, "Artifact size") ----------------------------------------

INT8_MIN_NUMEL = 65_536  # float tensors with more entries than this are quantised


def artifact_bytes(tensors: list[Tensor]) -> int:
    """Uncompressed payload of the int8 export (tuiLM/train/artifact.py): an upper bound on the
    zlib-compressed weights.

    2-D tensors above 65,536 entries: int8 values + one fp16 scale per row. Everything else: fp32 for
    control parameters (roles scalar and mhc), fp16 otherwise (BDH's 3-D encoders included).
    """
    total = 0
    for t in tensors:
        n = t.numel
        if len(t.shape) == 2 and n > INT8_MIN_NUMEL:
            total += n + 2 * t.shape[0]
        elif t.role in CONTROL_ROLES:
            total += 4 * n
        else:
            total += 2 * n
    return total
