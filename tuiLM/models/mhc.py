"""mHC: manifold-constrained hyper-connections on the GPT backbone (specs/mhc.md).

The residual stream becomes n streams, state X (B, T, n, C). Every attention and every MLP sub-layer
is one "site" k (k = 2·layer + {0, 1}) that reads, writes and mixes the streams:

    u    = Σ_i H_pre[i] · X_i                     (B, T, C), the input of the sub-layer F
    y    = F(u)                                   F keeps its own pre-norm
    X'_i = Σ_j H_res[i, j] · X_j + H_post[i] · y

with H_pre = sigmoid(p), H_post = 2·sigmoid(q) and H_res = Sinkhorn(R / tau), a doubly stochastic
matrix, so mixing across depth neither explodes nor vanishes. Static mode learns p, q, R per site;
dynamic mode (paper Eq. 7) adds a per-token term computed from the flattened streams. The embedding
is replicated n times on the way in and the streams are summed on the way out. With n = 1 there
are no mixing parameters at all and the model is exactly the plain GPT.

The file reads: Sinkhorn, one site (HyperConnection), the block, the model, its diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .gpt import GPT, Block, GPTConfig
from .layers import default


@dataclass
class MHCConfig(GPTConfig):
    mhc_streams: int = default("mhc_streams")
    mhc_mode: str = default("mhc_mode")  # static | dynamic
    mhc_h_res_init: float = default("mhc_h_res_init")
    mhc_tau: float = default("mhc_tau")
    mhc_iters: int = default("mhc_iters")
    mhc_gate: bool = default("mhc_gate")
    mhc_gate_init: float = default("mhc_gate_init")
    mhc_gate_noise: float = default("mhc_gate_noise")
    mhc_stream_embed: bool = default("mhc_stream_embed")
    mhc_alpha_init: float = default("mhc_alpha_init")

    def check(self) -> None:
        super().check()
        if self.golf_block:
            raise ValueError("golf_block is not combined with mHC streams")
        if self.mhc_mode not in ("static", "dynamic"):
            raise ValueError(f"mhc_mode must be static or dynamic, got {self.mhc_mode!r}")
        if self.mhc_streams < 1 or self.mhc_iters < 1 or self.mhc_tau <= 0:
            raise ValueError("mHC needs mhc_streams >= 1, mhc_iters >= 1 and mhc_tau > 0")
        if not 0.0 < self.mhc_gate_init < 1.0:
            raise ValueError("mhc_gate_init must lie in (0, 1)")


# -- Sinkhorn ------------------------------------------------------------------------------------

def _log_normalize(z: torch.Tensor, dim: int) -> torch.Tensor:
    """z - logsumexp(z, dim). The max shift is a constant to autograd (the result does not depend
    on it); spelled out because torch.logsumexp's inf handling costs several extra small kernels."""
    z = z - z.amax(dim=dim, keepdim=True).detach()
    return z - z.exp().sum(dim=dim, keepdim=True).log()


def _iterate(z: torch.Tensor, iters: int, trace: list | None = None) -> torch.Tensor:
    """Sinkhorn on z (n, n, *batch) in the log domain; ``trace`` collects exp of every iterate.

    The matrix dims come first so that the reductions over them run across contiguous vectors of
    the batch: reducing over trailing dims of size n is several times slower on CPU.
    """
    for _ in range(iters):
        for dim in (0, 1):  # columns (sum over i), then rows: normalised last, exact to round-off
            z = _log_normalize(z, dim)
            if trace is not None:
                trace.append(z.exp())
    return z


def _to_matrix_first(t: torch.Tensor) -> torch.Tensor:  # (..., n, n) -> (n, n, ...) contiguous
    return t.movedim((-2, -1), (0, 1)).contiguous()


def sinkhorn_unrolled(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Doubly stochastic H = exp(Z) from logits (..., n, n): ``iters`` times columns, then rows.

    Row sums are exact to round-off; column sums show convergence. Every iteration stays in the
    autograd graph: right for static sites ((n, n) tensors), too much memory per token in dynamic mode.
    """
    return _iterate(_to_matrix_first(logits), iters).exp().movedim((0, 1), (-2, -1))


class _SinkhornRecompute(torch.autograd.Function):
    """Sinkhorn that saves only its input and reruns the iterations inside backward.

    In dynamic mode Sinkhorn runs per token: unrolled under autograd, every half-iteration would keep
    (B, T, n, n) tensors for backward at every site. This keeps one. The backward is written out
    (no autograd inside) so that torch.compile can trace and fuse it: for y = z - logsumexp(z, dim),
    dL/dz = g - softmax(z)·Σ_dim g, and softmax(z) = exp(y).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, iters: int) -> torch.Tensor:
        z = _to_matrix_first(logits)  # (n, n, ...)
        ctx.iters = iters
        ctx.save_for_backward(z)
        return _iterate(z, iters).exp().movedim((0, 1), (-2, -1))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        (z,) = ctx.saved_tensors
        probs: list[torch.Tensor] = []  # exp of every iterate: local to this backward
        _iterate(z, ctx.iters, probs)
        g = _to_matrix_first(grad_h) * probs[-1]  # through H = exp(Z)
        for k in range(len(probs) - 1, -1, -1):  # half-steps alternate columns (dim 0), rows (dim 1)
            g = g - probs[k] * g.sum(dim=k % 2, keepdim=True)
        return g.movedim((0, 1), (-2, -1)), None


def sinkhorn(logits: torch.Tensor, iters: int, recompute: bool = True) -> torch.Tensor:
    """Doubly stochastic exp(Z) from logits (..., n, n), always in fp32 (autocast off).

    ``recompute`` trades one extra forward in backward for not keeping the iterations (dynamic mode).
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        if recompute and torch.is_grad_enabled() and logits.requires_grad:
            return _SinkhornRecompute.apply(logits, iters)
        return sinkhorn_unrolled(logits, iters)


# -- one site ------------------------------------------------------------------------------------

class HyperConnection(nn.Module):
    """The mixing coefficients of one site and the read / write / mix around its sub-layer.

    Static: H_pre (n,), H_post (n,), H_res (n, n), the same for every token. Dynamic: (B, T, n) and
    (B, T, n, n), from h = (v @ phi) · rsqrt(mean(v²) + eps) with v = flatten(X) in fp32.
    """

    ROLES = {name: "mhc" for name in
             ("b_pre", "b_post", "b_res", "gate_logit", "phi", "alpha_pre", "alpha_post", "alpha_res")}

    def __init__(self, config: MHCConfig, site: int):
        super().__init__()
        n, C = config.mhc_streams, config.d_model
        self.n = n
        self.tau, self.iters = config.mhc_tau, config.mhc_iters
        self.dynamic = config.mhc_mode == "dynamic"
        self.gate_noise = config.mhc_gate_noise
        self.eps = 1e-6
        # sigmoid(+1) = 0.73 on stream k mod n, sigmoid(-1) = 0.27 elsewhere: sites read different streams.
        b_pre = torch.full((n,), -1.0)
        b_pre[site % n] = 1.0
        self.b_pre = nn.Parameter(b_pre)
        self.b_post = nn.Parameter(torch.zeros(n))  # 2·sigmoid(0) = 1: every stream gets y
        b_res = torch.full((n, n), float(config.mhc_h_res_init))
        b_res.fill_diagonal_(0.0)  # near-identity mixing at init; how near is set by init / tau
        self.b_res = nn.Parameter(b_res)
        g = config.mhc_gate_init
        self.gate_logit = nn.Parameter(torch.tensor(math.log(g / (1 - g)))) if config.mhc_gate else None
        if self.dynamic:
            # Zero phi: a dynamic site starts exactly as the static one and learns its token term.
            self.phi = nn.Parameter(torch.zeros(n * C, n * n + 2 * n))
            self.alpha_pre = nn.Parameter(torch.tensor(float(config.mhc_alpha_init)))
            self.alpha_post = nn.Parameter(torch.tensor(float(config.mhc_alpha_init)))
            self.alpha_res = nn.Parameter(torch.tensor(float(config.mhc_alpha_init)))

    def gate(self) -> torch.Tensor:
        logit = self.gate_logit
        if self.training and self.gate_noise > 0:
            logit = logit + torch.randn_like(logit) * self.gate_noise
        return torch.sigmoid(logit)

    def coefficients(self, X: torch.Tensor, h_res: torch.Tensor | None = None):
        """(H_pre, H_post, H_res from Sinkhorn, H_res as used after the gate), all fp32.

        ``h_res``: this site's Sinkhorn output when the model already ran it (static mode batches
        all sites in one call)."""
        n = self.n
        p, q, r = self.b_pre.float(), self.b_post.float(), self.b_res.float()
        if self.dynamic:
            v = X.flatten(-2).float()  # (B, T, n·C)
            h = (v @ self.phi.float()) * torch.rsqrt(v.square().mean(-1, keepdim=True) + self.eps)
            p = self.alpha_pre * h[..., :n] + p  # (B, T, n)
            q = self.alpha_post * h[..., n:2 * n] + q  # (B, T, n)
            r = self.alpha_res * h[..., 2 * n:].unflatten(-1, (n, n)) + r  # (B, T, n, n)
        h_pre = torch.sigmoid(p)
        h_post = 2.0 * torch.sigmoid(q)
        if h_res is None:
            h_res = sinkhorn(r / self.tau, self.iters, recompute=self.dynamic)
        h_used = h_res
        if self.gate_logit is not None:
            g = self.gate().float()
            eye = torch.eye(n, device=h_res.device, dtype=h_res.dtype)
            h_used = (1.0 - g) * eye + g * h_res
        return h_pre, h_post, h_res, h_used

    def forward(self, X: torch.Tensor, branch, h_res: torch.Tensor | None = None,
                record: list | None = None) -> torch.Tensor:
        # Coefficients and stream mixing run in fp32 with autocast off: the residual state is mixed
        # at full precision; only the sub-layer F runs under the caller's autocast.
        dev = X.device.type
        with torch.autocast(device_type=dev, enabled=False):
            h_pre, h_post, h_res, h_used = self.coefficients(X, h_res)
            Xf = X.float()
            # Per token the stream mixing is an (n, n) @ (n, C) product; batched over B·T such tiny
            # matmuls are slower than the broadcast multiply-and-sum, so dynamic mode uses the latter.
            if self.dynamic:
                u = (h_pre.unsqueeze(-1) * Xf).sum(dim=-2)  # (B, T, C)
            else:
                u = torch.einsum("i,btic->btc", h_pre, Xf)
        y = branch(u.to(X.dtype))  # (B, T, C)
        with torch.autocast(device_type=dev, enabled=False):
            if self.dynamic:
                mixed = (h_used.unsqueeze(-1) * Xf.unsqueeze(-3)).sum(dim=-2)  # (B, T, n, C)
            else:
                mixed = torch.einsum("ij,btjc->btic", h_used, Xf)
            out = mixed + h_post.unsqueeze(-1) * y.float().unsqueeze(-2)
        if record is not None:
            record.append({"X": X, "h_res": h_res, "h_used": h_used, "site": self})
        return out.to(X.dtype)


# -- block and model -----------------------------------------------------------------------------

class MHCBlock(Block):
    """The GPT block's sub-layers (same names, so GPT weights load into it) between n streams."""

    def __init__(self, config: MHCConfig, layer: int):
        super().__init__(config)
        many = config.mhc_streams > 1
        self.hc_attn = HyperConnection(config, 2 * layer) if many else None
        self.hc_mlp = HyperConnection(config, 2 * layer + 1) if many else None

    def forward(self, X: torch.Tensor, h_res: tuple = (None, None),
                record: list | None = None) -> torch.Tensor:  # (B, T, n, C)
        if self.hc_attn is None:  # one stream: H_pre = H_post = H_res = 1, the plain residual
            X = X + self.attn_branch(X.squeeze(-2)).unsqueeze(-2)
            return X + self.mlp_branch(X.squeeze(-2)).unsqueeze(-2)
        X = self.hc_attn(X, self.attn_branch, h_res[0], record)
        return self.hc_mlp(X, self.mlp_branch, h_res[1], record)


class MHC(GPT):
    ROLES = {**GPT.ROLES, "stream_embed": "mhc"}

    def __init__(self, config: MHCConfig):
        super().__init__(config)
        n, C = config.mhc_streams, config.d_model
        self.n_streams = n
        # A small per-stream offset breaks the symmetry of n identical copies of the embedding.
        self.stream_embed = (nn.Parameter(0.01 * torch.randn(n, C))
                             if n > 1 and config.mhc_stream_embed else None)

    def make_block(self, layer: int) -> nn.Module:
        return MHCBlock(self.config, layer)

    def sites(self) -> list[HyperConnection]:
        return [hc for b in self.blocks for hc in (b.hc_attn, b.hc_mlp) if hc is not None]

    def static_h_res(self) -> list[tuple]:
        """Per block, the (attn, mlp) sites' Sinkhorn outputs, computed in one batched call (S, n, n):
        S separate calls on 4x4 matrices would cost S times the per-kernel overhead, which at small
        model sizes outweighs the model itself."""
        if self.n_streams == 1 or self.config.mhc_mode == "dynamic":
            return [(None, None)] * len(self.blocks)
        logits = torch.stack([hc.b_res for hc in self.sites()]).float() / self.config.mhc_tau
        h = sinkhorn(logits, self.config.mhc_iters, recompute=False).unbind(0)  # S x (n, n)
        return [(h[2 * i], h[2 * i + 1]) for i in range(len(self.blocks))]

    def streams(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        X = x.unsqueeze(-2).expand(*x.shape[:-1], self.n_streams, x.size(-1))  # (B, T, n, C)
        if self.stream_embed is not None:
            X = X + self.stream_embed.to(x.dtype)
        for block, h_res in zip(self.blocks, self.static_h_res()):
            X = block(X, h_res, record)
        return X

    def trunk(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C): sum of the streams
        return self.streams(x).sum(dim=-2)

    @torch.no_grad()
    def diagnostics(self, idx: torch.Tensor) -> dict[str, float]:
        """Stream and mixing metrics of specs/mhc.md on the batch ``idx``, in fp32, eval mode.

        Empty for one stream (nothing to mix). stream_spread is measured on the final state (the
        streams that are summed for the head); stream_similarity on the state entering every site.
        """
        if self.n_streams == 1:
            return {}
        was_training = self.training
        self.eval()
        try:
            with torch.autocast(device_type=idx.device.type, enabled=False):
                record: list[dict] = []
                X = self.streams(self.embed(idx), record).float()
        finally:
            self.train(was_training)
        return _stream_metrics(X, record, self)


def _offdiag_mean(G: torch.Tensor) -> torch.Tensor:
    """Mean of the off-diagonal entries of (..., n, n), over everything."""
    n = G.size(-1)
    off = G.sum((-1, -2)) - G.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (off / (n * (n - 1))).mean()


def _cosine_gram(X: torch.Tensor) -> torch.Tensor:  # (..., n, C) -> (..., n, n)
    Xn = torch.nn.functional.normalize(X.float(), dim=-1)
    return Xn @ Xn.transpose(-1, -2)


def _stream_metrics(X: torch.Tensor, record: list[dict], model: MHC) -> dict[str, float]:
    n = model.n_streams
    out: dict[str, float] = {}
    out["stream_similarity"] = float(torch.stack([_offdiag_mean(_cosine_gram(r["X"])) for r in record]).mean())
    centred = X - X.mean(dim=-2, keepdim=True)
    spread = centred.square().sum((-1, -2)) / X.square().sum((-1, -2)).clamp_min(1e-30)  # (B, T)
    out["stream_spread"] = float(spread.mean())
    if model.stream_embed is not None:
        out["stream_embed_similarity"] = float(_offdiag_mean(_cosine_gram(model.stream_embed)))
    sites = [r["site"] for r in record]
    if sites[0].gate_logit is not None:
        out["gate_value"] = float(torch.stack([torch.sigmoid(s.gate_logit.float()) for s in sites]).mean())

    def diag_mean(key: str) -> float:
        return float(torch.stack([r[key].diagonal(dim1=-2, dim2=-1).sum(-1).mean() / n for r in record]).mean())

    out["H_res_diag_mean"] = diag_mean("h_used")
    out["H_res_diag_mean_raw"] = diag_mean("h_res")
    out["sinkhorn_row_err"] = max(float((r["h_res"].sum(-1) - 1).abs().max()) for r in record)
    out["sinkhorn_col_err"] = max(float((r["h_res"].sum(-2) - 1).abs().max()) for r in record)
    # Composite mixing over depth, M = H_S ··· H_1 (per token in dynamic mode): its largest absolute
    # row sum bounds the forward gain of the residual path, its largest column sum the backward gain.
    M = record[0]["h_used"]
    for r in record[1:]:
        M = r["h_used"] @ M
    out["amax_fwd"] = float(M.abs().sum(-1).max())
    out["amax_bwd"] = float(M.abs().sum(-2).max())
    if sites[0].dynamic:
        for name in ("alpha_pre", "alpha_post", "alpha_res"):
            out[name] = float(torch.stack([getattr(s, name).abs().float() for s in sites]).mean())
    return out
