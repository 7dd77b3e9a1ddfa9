"""mHC: Sinkhorn, the frozen-residual trap, reduction to the plain GPT, saved memory, diagnostics."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.autograd.graph import saved_tensors_hooks  # noqa: E402

from tests.test_models import build, model_cfg, one_thread  # noqa: E402,F401  (one_thread: autouse)
from tuiLM.models import build_model, mhc  # noqa: E402
from tuiLM.models.mhc import sinkhorn, sinkhorn_unrolled  # noqa: E402

IDX = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(3))


def gpt_and_mhc(**fields):
    """A GPT and an mHC model with the same backbone fields, the GPT's weights copied into the mHC."""
    gpt = build(arch="gpt", **{k: v for k, v in fields.items() if not k.startswith("mhc_")})
    model = build(arch="mhc", **fields)
    missing, unexpected = model.load_state_dict(gpt.state_dict(), strict=False)
    assert not unexpected
    assert all(".hc_" in k or k == "stream_embed" for k in missing), missing
    return gpt, model


# -- Sinkhorn ------------------------------------------------------------------------------------

def test_sinkhorn_is_doubly_stochastic_after_20_iterations():
    logits = 0.5 * torch.randn(256, 4, 4, generator=torch.Generator().manual_seed(0))
    logits[0] = torch.full((4, 4), -2.0).fill_diagonal_(0.0)  # the default init
    h = sinkhorn(logits, 20)
    assert (h >= 0).all()
    assert (h.sum(-1) - 1).abs().max() < 1e-6  # rows: normalised last, exact to round-off
    assert (h.sum(-2) - 1).abs().max() < 1e-6  # columns: converged
    # the used H_res off-diagonal init -8 / tau 1 is close to the identity (specs: diag ~0.999)
    near_identity = sinkhorn(torch.full((4, 4), -8.0).fill_diagonal_(0.0), 20)
    assert 0.998 < float(near_identity.diagonal().mean()) < 1.0


def test_sinkhorn_recompute_gives_the_unrolled_gradient():
    logits = torch.randn(3, 5, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    weight = torch.randn(3, 5, 4, 4)
    grads = []
    for fn in (lambda z: sinkhorn(z, 20, recompute=True), lambda z: sinkhorn_unrolled(z, 20)):
        z = logits.clone().requires_grad_(True)
        (fn(z) * weight).sum().backward()
        grads.append(z.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert grads[0].abs().max() > 1e-3


def test_frozen_regime_gives_exactly_zero_gradient():
    """The frozen-residual trap (specs/mhc.md): off-diagonal logit -8 at tau 0.05 is -160 after the
    temperature. exp(-160) underflows to 0 in fp32, so Sinkhorn returns exactly the identity, the
    derivative of exp at the off-diagonal entries is exactly 0, and the diagonal's gradient cancels
    exactly in the normalisation. b_res gets a gradient of exactly zero, and so does the gate
    (d/dg of (1-g)·I + g·H_res is H_res - I = 0). H_res stays the identity and the gate at its init
    forever: the "stable" H_res_diag_mean = 1.0 of such a run is a dead model part, not a result.
    The same model at tau 1 gets non-zero gradients (so this test can fail)."""
    for tau, frozen in ((0.05, True), (1.0, False)):
        model = build(arch="mhc", mhc_h_res_init=-8.0, mhc_tau=tau, mhc_gate=True, mhc_gate_init=0.3,
                      mhc_stream_embed=True)
        model.train()
        _, loss = model(IDX, IDX)
        loss.backward()
        for site in model.sites():
            b_res, gate = site.b_res.grad, site.gate_logit.grad
            if frozen:
                assert torch.equal(b_res, torch.zeros_like(b_res))
                assert float(gate) == 0.0
            else:
                assert b_res.abs().max() > 0 and float(gate) != 0.0
        d = model.diagnostics(IDX)
        assert (d["H_res_diag_mean_raw"] == 1.0) == frozen


def test_frozen_regime_in_dynamic_mode_too():
    model = build(arch="mhc", mhc_mode="dynamic", mhc_h_res_init=-8.0, mhc_tau=0.05, mhc_stream_embed=True)
    _perturb_phi(model)
    _, loss = model(IDX, IDX)
    loss.backward()
    for site in model.sites():
        assert torch.equal(site.b_res.grad, torch.zeros_like(site.b_res))


def _perturb_phi(model, std=0.05):
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for site in model.sites():
            site.phi.add_(std * torch.randn(site.phi.shape, generator=g))
            for a in (site.alpha_pre, site.alpha_post, site.alpha_res):
                a.fill_(1.0)


# -- reduction to the plain model ----------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    {},
    {"pos": "learned", "activation": "swiglu", "norm": "rmsnorm", "tie_embeddings": False,
     "bigram_buckets": 13, "bigram_dim": 8, "logit_softcap": 20.0, "n_kv_heads": 2, "qk_norm": True},
])
@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_one_stream_is_exactly_the_plain_gpt(fields, mode):
    gpt = build(arch="gpt", **fields)
    one = build(arch="mhc", mhc_streams=1, mhc_mode=mode, mhc_gate=True, mhc_stream_embed=True, **fields)
    one.load_state_dict(gpt.state_dict(), strict=True)  # no mixing parameters at all
    assert sum(p.numel() for p in one.parameters()) == sum(p.numel() for p in gpt.parameters())
    (a, la), (b, lb) = gpt(IDX, IDX), one(IDX, IDX)
    assert torch.equal(a, b) and torch.equal(la, lb)


@pytest.mark.parametrize("norm", ["rmsnorm", "layernorm"])
def test_static_mhc_at_near_identity_init_matches_the_plain_gpt(norm):
    """At init the n streams are identical copies, H_res is near I with rows summing to 1, so every
    stream carries the plain residual; the sub-layers read sum(H_pre) = 1.54 times it and the head
    reads n times it, which the pre-norms undo. Exactly only up to the norms' eps: LayerNorm's 1e-5
    is not small next to the variance of a std-0.02 embedding, so that case uses unit-scale
    embeddings (RMSNorm's eps is the fp32 machine epsilon)."""
    gpt, model = gpt_and_mhc(mhc_streams=4, mhc_h_res_init=-8.0, mhc_tau=1.0, norm=norm)
    if norm == "layernorm":
        with torch.no_grad():
            gpt.tok_emb.weight.normal_(0.0, 1.0)
            model.tok_emb.weight.copy_(gpt.tok_emb.weight)
    a, b = gpt(IDX)[0], model(IDX)[0]
    assert (a - b).abs().max() < 1e-3
    assert not torch.equal(a, b)  # the streams really are mixed and summed, only near-identically


def test_dynamic_mhc_starts_as_static_mhc():
    static = build(arch="mhc", mhc_mode="static", mhc_gate=True, mhc_stream_embed=True)
    dynamic = build(arch="mhc", mhc_mode="dynamic", mhc_gate=True, mhc_stream_embed=True)
    missing, unexpected = dynamic.load_state_dict(static.state_dict(), strict=False)
    assert not unexpected and all(k.rsplit(".", 1)[-1] in ("phi", "alpha_pre", "alpha_post", "alpha_res")
                                  for k in missing)
    assert torch.allclose(static(IDX)[0], dynamic(IDX)[0], atol=1e-5)  # phi starts at zero
    _perturb_phi(dynamic)
    assert not torch.allclose(static(IDX)[0], dynamic(IDX)[0], atol=1e-3)


def test_gate_noise_only_in_training():
    model = build(arch="mhc", mhc_gate=True, mhc_gate_init=0.5, mhc_gate_noise=1.0, mhc_stream_embed=True,
                  mhc_h_res_init=-1.0)
    model.eval()
    assert torch.equal(model(IDX)[0], model(IDX)[0])
    model.train()
    assert not torch.equal(model(IDX)[0], model(IDX)[0])


# -- memory: Sinkhorn iterations are not kept for backward ---------------------------------------

def _sinkhorn_saved_bytes(monkeypatch, fn, force_recompute: bool | None = None) -> int:
    """Bytes of tensors saved for backward by the Sinkhorn calls made while ``fn`` runs.

    ``mhc.sinkhorn`` is wrapped so that a saved-tensor hook counts only inside it;
    ``force_recompute`` overrides the choice the caller makes."""
    real = mhc.sinkhorn
    total, inside = 0, False

    def counting(logits, iters, recompute=True):
        nonlocal inside
        inside = True
        try:
            return real(logits, iters, recompute if force_recompute is None else force_recompute)
        finally:
            inside = False

    def pack(t):
        nonlocal total
        if inside:
            total += t.numel() * t.element_size()
        return t

    monkeypatch.setattr(mhc, "sinkhorn", counting)
    try:
        with saved_tensors_hooks(pack, lambda t: t):
            fn()
    finally:
        monkeypatch.setattr(mhc, "sinkhorn", real)
    return total


def test_dynamic_sinkhorn_does_not_keep_its_iterations(monkeypatch):
    B, T = IDX.shape
    n, iters = 4, 20
    model = build(arch="mhc", mhc_mode="dynamic", mhc_streams=n, mhc_iters=iters)
    S = 2 * model.config.n_layers
    per_token_sites = B * T * S * n * n * 4  # bytes of one (B, T, n, n) fp32 tensor at every site
    saved = _sinkhorn_saved_bytes(monkeypatch, lambda: model(IDX, IDX))
    assert saved == per_token_sites  # only the logits, once per site
    # the same count on the unrolled iteration (as plain autograd would keep it) is above
    # iters x that: the measure can tell the two apart
    unrolled = _sinkhorn_saved_bytes(monkeypatch, lambda: model(IDX, IDX), force_recompute=False)
    assert unrolled > iters * per_token_sites


def test_sinkhorn_function_saves_only_its_input(monkeypatch):
    z = torch.randn(8, 16, 4, 4, requires_grad=True)
    saved = _sinkhorn_saved_bytes(monkeypatch, lambda: mhc.sinkhorn(z, 20, recompute=True))
    assert saved == z.numel() * 4


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_mhc_works_under_torch_compile(mode):
    model = build(arch="mhc", mhc_mode=mode, n_layers=1, mhc_gate=True)
    ref, ref_loss = model(IDX, IDX)
    ref_loss.backward()
    ref_grad = model.sites()[0].b_res.grad.clone()
    model.zero_grad()
    compiled = torch.compile(model, backend="aot_eager")
    logits, loss = compiled(IDX, IDX)
    loss.backward()
    assert torch.allclose(logits, ref, atol=1e-5)
    assert torch.allclose(model.sites()[0].b_res.grad, ref_grad, atol=1e-7)


# -- diagnostics ---------------------------------------------------------------------------------

BASE_KEYS = {"stream_similarity", "stream_spread", "H_res_diag_mean", "H_res_diag_mean_raw",
             "sinkhorn_row_err", "sinkhorn_col_err", "amax_fwd", "amax_bwd"}


@pytest.mark.parametrize("fields,extra", [
    ({}, set()),
    ({"mhc_gate": True, "mhc_stream_embed": True}, {"gate_value", "stream_embed_similarity"}),
    ({"mhc_mode": "dynamic"}, {"alpha_pre", "alpha_post", "alpha_res"}),
])
def test_diagnostic_names(fields, extra):
    d = build(arch="mhc", **fields).diagnostics(IDX)
    assert set(d) == BASE_KEYS | extra
    assert all(type(v) is float for v in d.values())


def test_the_registry_declares_every_diagnostic_the_model_writes():
    """A study may take any of them as its objective (study/spec.py checks the name against the registry)."""
    from tuiLM.models.registry import MHC_DIAGNOSTICS, family

    written = set()
    for fields in ({}, {"mhc_gate": True, "mhc_stream_embed": True}, {"mhc_mode": "dynamic"}):
        written |= set(build(arch="mhc", **fields).diagnostics(IDX))
    assert written == set(MHC_DIAGNOSTICS) == set(family("mhc").diagnostics)
    assert family("gpt").diagnostics == family("bdh").diagnostics == ()


def test_diagnostics_at_init():
    model = build(arch="mhc", mhc_h_res_init=-8.0, mhc_tau=1.0)
    model.train()
    d = model.diagnostics(IDX)
    assert model.training  # put back in the mode it was in
    assert d["stream_similarity"] == pytest.approx(1.0, abs=1e-5)  # n identical copies at init
    assert d["stream_spread"] == pytest.approx(0.0, abs=1e-6)
    assert 0.998 < d["H_res_diag_mean"] < 1.0 and d["H_res_diag_mean"] == d["H_res_diag_mean_raw"]
    assert d["sinkhorn_row_err"] < 1e-6 and d["sinkhorn_col_err"] < 1e-6
    assert d["amax_fwd"] == pytest.approx(1.0, abs=1e-5) and d["amax_bwd"] == pytest.approx(1.0, abs=1e-5)


def test_diagnostics_values():
    n = 4
    model = build(arch="mhc", mhc_streams=n, mhc_h_res_init=0.0, mhc_gate=True, mhc_gate_init=0.25,
                  mhc_stream_embed=True, mhc_mode="dynamic")
    with torch.no_grad():
        model.stream_embed.copy_(torch.eye(n, 32) * 5.0)  # orthogonal rows
    d = model.diagnostics(IDX)
    assert d["H_res_diag_mean_raw"] == pytest.approx(1 / n, abs=1e-6)  # uniform logits: all 1/n
    assert d["H_res_diag_mean"] == pytest.approx(0.75 + 0.25 / n, abs=1e-6)  # (1-g)·1 + g/n
    assert d["gate_value"] == pytest.approx(0.25, abs=1e-6)
    assert d["stream_embed_similarity"] == pytest.approx(0.0, abs=1e-6)
    assert d["alpha_pre"] == pytest.approx(0.01)
    assert d["stream_similarity"] < 0.99  # the stream offsets differentiate the streams
    assert 0.0 < d["stream_spread"] < 1.0


def test_diagnostics_of_one_stream_are_empty():
    assert build(arch="mhc", mhc_streams=1).diagnostics(IDX) == {}


def test_golf_block_is_rejected():
    with pytest.raises(ValueError, match="golf_block"):
        build_model(model_cfg(arch="mhc", golf_block=True), 64, 16)
