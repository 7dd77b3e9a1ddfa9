"""Tensors eager PyTorch autograd saves for backward in one training step, by architecture.

Each function walks the model's forward (tuiLM/models) operator by operator and adds what the
operator keeps for its backward, each storage once, parameters excluded (they are the weights row):
a linear keeps its input, a norm its input and statistics, relu its output, gelu its input, a
product both factors, dropout its mask. Views share storage with their base and cost nothing; a
reshape that has to copy costs a new tensor. The result is checked against the exact count
(``exact.py``: the real model under fake tensors) and against real CPU steps in the tests.

Precision: under bf16 autocast the matmuls run in bf16 and their inputs are cast copies (each call
casts its own; weights are cast once per step and kept), norms and the loss run in fp32, the residual
stream stays fp32. Device: dropout keeps a bool mask on CUDA and a mask in the input dtype on the CPU;
scaled_dot_product_attention with dropout has a fused kernel on CUDA only (the CPU math path keeps
the T x T probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models.registry import family
from .params import d_ff, kv_heads

I64, F32 = 8, 4


@dataclass
class Ledger:
    """Saved bytes by component (the rows of the activation breakdown)."""

    items: dict[str, int] = field(default_factory=dict)

    def add(self, component: str, elements: int, bytes_per: int, times: int = 1) -> None:
        if elements > 0 and bytes_per > 0 and times > 0:
            self.items[component] = self.items.get(component, 0) + elements * bytes_per * times

    @property
    def total(self) -> int:
        return sum(self.items.values())


@dataclass(frozen=True)
class Precision:
    device: str  # "cuda" | "cpu" | "mps"
    dtype: str  # "bf16" | "fp16" | "fp32"

    @property
    def act(self) -> int:  # bytes of a matmul output / input under autocast
        return 4 if self.dtype == "fp32" else 2

    @property
    def autocast(self) -> bool:
        return self.dtype != "fp32"

    def layer_norm(self, input_bytes: int) -> int:
        """Bytes per element a LayerNorm keeps of a low-precision input: CUDA autocast runs layer_norm
        in fp32 (an fp32 copy and fp32 statistics); CPU autocast leaves it in the input dtype."""
        return F32 if self.device == "cuda" and self.autocast else input_bytes

    def mask(self, input_bytes: int) -> int:
        """Bytes per element of a dropout mask: bool on CUDA, the input dtype elsewhere."""
        return 1 if self.device == "cuda" else input_bytes


def saved(preset: Any, vocab: int, prec: Precision) -> Ledger:
    """Saved-for-backward bytes of one micro-batch of ``preset`` (B = device_batch_size)."""
    m = preset.model
    return family(m.arch).activations(m, preset.train.device_batch_size, preset.data.seq_len, vocab, prec)


# -- GPT and the mHC backbone --------------------------------------------------------------------

def _norm(led: Ledger, m: Any, rows: int, width: int, in_bytes: int, component: str = "norms") -> None:
    """A norm over the last dim of a (rows, width) input, without the output (its consumer keeps it).

    LayerNorm keeps input, mean and rstd. RMSNorm is a composite of pow/mean/rsqrt/mul: it keeps an
    fp32 copy of the input (the input itself when fp32), rstd, and with a gain the normalised input.
    """
    if m.norm == "layernorm":
        led.add(component, rows * width, in_bytes)
        led.add(component, rows, F32, 2)
    else:
        led.add(component, rows * width, F32)
        led.add(component, rows, F32)
        if m.norm_weight:
            led.add(component, rows * width, F32)


def gpt_saved(m: Any, B: int, T: int, V: int, p: Precision) -> Ledger:
    return _gpt(m, B, T, V, p, streams=False)


def mhc_saved(m: Any, B: int, T: int, V: int, p: Precision) -> Ledger:
    """The GPT backbone plus what every hyper-connection site keeps."""
    return _gpt(m, B, T, V, p, streams=True)


def _gpt(m: Any, B: int, T: int, V: int, p: Precision, streams: bool) -> Ledger:
    led = Ledger()
    D, H, L = m.d_model, m.n_heads, m.n_layers
    KV, hd, Fh = kv_heads(m), D // H, d_ff(m)
    BT = B * T
    a = p.act
    n = m.mhc_streams if streams else 1
    drop = m.dropout > 0
    golf = m.golf_block and not streams  # mHC does not combine with the golf block (validation says so)

    # embedding: indices for the lookup; positions; BigramHash; golf's weightless norm; dropout
    led.add("embedding", BT, I64)
    if m.pos == "learned":
        led.add("embedding", T, I64)
    if m.bigram_buckets > 0:
        led.add("embedding", BT, I64)  # bucket ids
        if m.bigram_dim != D:
            led.add("embedding", BT * m.bigram_dim, a)  # projection input (cast copy under autocast)
            led.add("embedding", BT * D, a)  # projected e, kept by e * scale
            if p.autocast:
                led.add("embedding", 1, a)  # the scale cast to e's dtype
        else:
            led.add("embedding", BT * D, F32)  # the table rows, kept by e * scale
    if golf:
        led.add("norms", BT * D, F32)
        led.add("norms", BT, F32)
    if drop:
        led.add("dropout", BT * D, p.mask(F32))

    # linear inputs: fp32 runs share one tensor between the linears reading it; autocast casts per call
    def linear_inputs(component: str, width: int, readers: int) -> None:
        led.add(component, BT * width, a, readers if p.autocast else 1)

    sdpa_math = drop and p.device != "cuda"  # the CPU has no fused SDPA kernel with dropout
    for layer in range(L):
        if golf:
            led.add("residual", BT * D, F32)  # the block input (x0 for the first), kept by mix[0] * x
            if layer == L // 2 and L >= 2:
                # the last encoder block's output, kept by the first skip (skip_weight * skip)
                led.add("residual", BT * D, F32)
        for site in ("attn", "mlp"):
            if n > 1:
                _mhc_site(led, m, B, T, first=(layer == 0 and site == "attn"), p=p)
            _norm(led, m, BT, D, F32)
            if site == "attn":
                linear_inputs("attention", D, 3)
                q_new = m.qk_norm or m.pos == "rope"  # q is a fresh contiguous tensor
                if m.qk_norm:  # weightless RMSNorm per head on q and k: fp32 copy + rstd
                    led.add("attention", BT * (H + KV) * hd, F32)
                    led.add("attention", BT * (H + KV), F32)
                if m.pos == "rope" and p.autocast:
                    led.add("attention", T * hd // 2, a, 4)  # cos / sin cast for q and for k
                if golf:
                    led.add("attention", BT * H * hd, a)  # q before the per-head gain
                if sdpa_math:
                    # CPU math path, in fp32 even under autocast: scaled copies of q and k, softmax
                    # output, dropout mask, dropped probabilities, v (expanded to every query head
                    # under GQA), and a copy of the (B, H, T, hd) output as the projection input
                    led.add("attention", BT * H * hd, F32, 3)
                    led.add("attention", B * H * T * T, F32, 3)
                    led.add("attention", BT * H * hd, a)
                else:
                    # fused kernel: q, k, v, the output and the fp32 log-sum-exp, no T x T matrix
                    led.add("attention", BT * H * hd, a, 2)
                    led.add("attention", BT * KV * hd, a, 2)
                    led.add("attention", B * H * T, F32)
                    if q_new and H > 1 and p.device != "cuda":
                        # the CPU kernel returns q's (B, H, T, hd) layout, so the reshape copies
                        led.add("attention", BT * H * hd, a)
            else:
                linear_inputs("mlp", D, 2 if m.activation == "swiglu" else 1)
                if m.activation == "gelu":
                    led.add("mlp", BT * Fh, a, 2)  # gelu input, c_proj input
                elif m.activation == "relu2":
                    led.add("mlp", BT * Fh, a, 2)  # relu output, its square (c_proj input)
                else:
                    led.add("mlp", BT * Fh, a, 4)  # gate, silu(gate), up, product
            if drop:
                led.add("dropout", BT * D, p.mask(a))
            if golf:
                led.add("residual", BT * D, a)  # branch output, kept by y * scale
                if p.autocast:
                    led.add("residual", D + (H if site == "attn" else 0), a)  # scale, q gain casts
    # final norm, LM head input
    _norm(led, m, BT, D, F32)
    led.add("head", BT * D, a)
    if p.autocast:  # bf16 copies of the weights, cast once per step and kept for backward
        led.add("weight copies", _matmul_params_gpt(m, V), a)
    _loss(led, B, T, V, softcap=m.logit_softcap > 0)
    if n > 1 and m.mhc_mode == "static":
        S = 2 * L
        led.add("mhc", S * n * n, F32, 2 * m.mhc_iters * 2 + 1)  # unrolled batched Sinkhorn
        led.add("mhc", S * n, F32, 2 * m.mhc_iters * 2)
    return led


def _matmul_params_gpt(m: Any, V: int) -> int:
    D, H, KV, hd, Fh = m.d_model, m.n_heads, kv_heads(m), m.d_model // m.n_heads, d_ff(m)
    per_block = 2 * D * H * hd + 2 * D * KV * hd + (3 if m.activation == "swiglu" else 2) * D * Fh
    total = m.n_layers * per_block + V * D
    if m.bigram_buckets > 0 and m.bigram_dim != D:
        total += m.bigram_dim * D
    return total


def _mhc_site(led: Ledger, m: Any, B: int, T: int, first: bool, p: Precision) -> None:
    """One hyper-connection site: the n-fold state it reads and mixes, the branch output it writes."""
    n, C, BT = m.mhc_streams, m.d_model, B * T
    # The state X (B, T, n, C) in fp32. The first site reads the embedding expanded n times (one
    # copy in memory) unless the stream embedding made a real n-fold tensor. Static sites contract
    # X with an (n,) / (n, n) matrix: einsum wants X stream-major, which is how every static site
    # writes its output, but the embedding-plus-stream-embed tensor is token-major, so both einsums
    # of the first site copy it.
    expanded = first and not m.mhc_stream_embed
    copies = 2 if first and m.mhc_stream_embed and m.mhc_mode == "static" else 1
    led.add("mhc", BT * C * (1 if expanded else n), F32, copies)
    led.add("mhc", BT * C, F32)  # y.float(), kept by h_post * y
    if m.mhc_mode == "dynamic":
        k = n * n + 2 * n
        if expanded:
            led.add("mhc", BT * n * C, F32)  # v = flatten(X) has to copy the expanded view
        led.add("mhc", BT, F32)  # rsqrt(mean(v^2))
        led.add("mhc", BT * k, F32, 2)  # v @ phi, and the scaled h
        led.add("mhc", BT * n, F32, 3)  # sigmoid(p), sigmoid(q), h_post
        led.add("mhc", BT * n * n, F32, 2)  # Sinkhorn input (recomputed in backward), its output
        if m.mhc_gate:
            led.add("mhc", BT * n * n, F32)  # gated H_res
    else:
        led.add("mhc", n, F32, 3)  # sigmoid(p), sigmoid(q), h_post
        if m.mhc_gate:
            led.add("mhc", n * n, F32)  # gated H_res
    if m.mhc_gate:
        led.add("mhc", n * n + 1, F32)  # the identity and g, kept by the gate's products


def _loss(led: Ledger, B: int, T: int, V: int, softcap: bool) -> None:
    """fp32 logits: tanh output for the soft cap, log-softmax output, targets."""
    BTV = B * T * V
    if softcap:
        led.add("logits", BTV, F32)
    led.add("logits", BTV, F32)
    led.add("logits", B * T, I64)
    led.add("logits", 1, F32)


# -- BDH -----------------------------------------------------------------------------------------

def bdh_saved(m: Any, B: int, T: int, V: int, p: Precision) -> Ledger:
    """The reference forward (models/bdh.py). Its matmuls broadcast x (B, 1, T, D) against the
    per-head weights (nh, D, N): torch.matmul materialises both operands at the full batch shape, so
    every layer keeps a B-fold copy of encoder and encoder_v as well as the (B, nh, T, N) tensors."""
    led = Ledger()
    D, nh = m.d_model, m.n_heads
    N = m.bdh_mult * D // nh
    a = p.act
    BT, U, XH, W = B * T, B * nh * T * N, B * nh * T * D, nh * D * N
    led.add("embedding", BT, I64)
    led.add("norms", BT * D, F32)
    led.add("norms", BT, F32, 2)
    # torch.matmul broadcasts x (B, 1, T, D) against (nh, D, N) by expanding both to (B, nh, ...) and
    # reshaping to a batch of B*nh: a copy of each unless B or nh is 1, when the reshape is a view.
    # Without copies x itself is kept (and, in fp32, is the same tensor as the attention's v).
    copies = nh > 1 and B > 1
    if not copies and p.autocast:
        led.add("weight copies", W, a, 2)  # encoder, encoder_v: autocast's one cast copy each
    x_kept = XH if copies else BT * D
    v_kept = XH if copies else (BT * D if p.autocast else 0)
    for _ in range(m.n_layers):
        if copies:
            led.add("encoder", W * B, a, 2)  # encoder and encoder_v expanded to (B*nh, D, N)
        led.add("encoder", x_kept, a)  # x (expanded or cast) for x @ encoder
        led.add("neurons", U, a, 4)  # xs = relu(x @ E), rope(xs), ys = relu(a @ E_v), xy (reshaped)
        led.add("attention", T * N, F32, 2)  # cos, sin of the rope angles
        led.add("attention", B * nh * T * T, a)  # scores
        led.add("attention", v_kept, a)  # v = x (expanded or cast) for scores @ v
        ln = p.layer_norm(a)
        led.add("norms", XH, ln)  # LN(attention read-out): input and statistics
        led.add("norms", B * nh * T, ln, 2)
        led.add("encoder", XH, a)  # its output (cast) for a @ encoder_v
        if m.dropout > 0:
            led.add("dropout", U, p.mask(a))
        led.add("norms", BT * D, ln)  # LN(decoder output)
        led.add("norms", BT, ln, 2)
        led.add("norms", BT * D, F32)  # LN(x + y): the residual is fp32
        led.add("norms", BT, F32, 2)
    led.add("head", BT * D, a)
    if p.autocast:
        led.add("weight copies", nh * N * D + D * V, a)  # decoder and lm_head, cast once per step
    _loss(led, B, T, V, softcap=False)
    return led
