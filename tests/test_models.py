"""Model families: parameter inventory, causality, generation, parameter roles, BigramHash.

Tiny configurations on the CPU; the large ones are built on the meta device (no memory, instant).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests.conftest import PRESETS, make_preset  # noqa: E402
from tuiLM.config.load import load  # noqa: E402
from tuiLM.models import build_model  # noqa: E402
from tuiLM.models.generate import generate  # noqa: E402
from tuiLM.models.gpt import bigram_hash  # noqa: E402
from tuiLM.models.layers import ROLES  # noqa: E402

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine, torch's default thread pool spin-waits
    against the other processes and tiny models run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = {"model.n_layers": 2, "model.d_model": 32, "model.n_heads": 4, "model.dropout": 0.0}


def model_cfg(**fields):
    """A preset ``model`` section: defaults < TINY < ``fields`` (keys without the ``model.`` prefix)."""
    changes = dict(TINY)
    changes.update({f"model.{k}": v for k, v in fields.items()})
    return make_preset(changes).model


def build(vocab: int = 64, seq: int = 16, meta: bool = False, **fields):
    cfg = model_cfg(**fields)
    if meta:
        with torch.device("meta"):
            return build_model(cfg, vocab, seq)
    torch.manual_seed(0)
    return build_model(cfg, vocab, seq).eval()


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def inventory(m, V: int, T: int) -> int:
    """The parameter count the estimator uses (specs: the brief's exact inventory), from the section."""
    if m.arch == "bdh":
        return 3 * m.bdh_mult * m.d_model**2 + 2 * V * m.d_model
    D, H, L = m.d_model, m.n_heads, m.n_layers
    KV = m.n_kv_heads or H
    hd = D // H
    Fh = m.d_ff or int(m.mlp_mult * D)
    normp = 0 if not m.norm_weight else (2 * D if m.norm == "layernorm" else D)
    total = V * D
    if m.pos == "learned":
        total += T * D
    if m.bigram_buckets > 0:
        K, db = m.bigram_buckets, m.bigram_dim
        total += K * db + (db * D if db != D else 0) + 1
    block = 2 * normp + D * D + 2 * D * KV * hd + D * D + (3 if m.activation == "swiglu" else 2) * D * Fh
    if m.golf_block:
        block += 2 * D + 2 * D + H
    total += L * block
    if m.golf_block:
        total += (L // 2) * D
    total += normp
    if not m.tie_embeddings:
        total += D * V
    if m.arch == "mhc" and m.mhc_streams > 1:
        n, S = m.mhc_streams, 2 * L
        site = n + n + n * n + (1 if m.mhc_gate else 0)
        if m.mhc_mode == "dynamic":
            site += n * D * (n * n + 2 * n) + 3
        total += S * site + (n * D if m.mhc_stream_embed else 0)
    return total


# -- parameter counts ----------------------------------------------------------------------------

GPT_VARIANTS = [
    {},
    {"activation": "relu2", "norm": "rmsnorm", "norm_weight": False, "qk_norm": True},
    {"activation": "swiglu", "norm": "rmsnorm", "tie_embeddings": False, "d_ff": 48},
    {"pos": "learned", "n_kv_heads": 2, "mlp_mult": 2.5, "logit_softcap": 15.0},
    {"bigram_buckets": 37, "bigram_dim": 8},
    {"bigram_buckets": 37, "bigram_dim": 32},  # bigram_dim == d_model: no projection
    {"golf_block": True, "n_layers": 3, "n_kv_heads": 2, "activation": "relu2", "norm": "rmsnorm",
     "norm_weight": False, "qk_norm": True, "bigram_buckets": 20, "bigram_dim": 16},
    {"golf_block": True, "n_layers": 1, "tie_embeddings": False, "norm_weight": True},
]
MHC_VARIANTS = [
    {"mhc_streams": 1},
    {"mhc_streams": 1, "mhc_mode": "dynamic", "mhc_gate": True, "mhc_stream_embed": True},
    {"mhc_streams": 4},
    {"mhc_streams": 2, "mhc_gate": True, "mhc_stream_embed": True, "pos": "learned"},
    {"mhc_streams": 4, "mhc_mode": "dynamic"},
    {"mhc_streams": 3, "mhc_mode": "dynamic", "mhc_gate": True, "mhc_stream_embed": True,
     "activation": "swiglu", "bigram_buckets": 11, "bigram_dim": 4, "tie_embeddings": False},
]


@pytest.mark.parametrize("fields", [dict(arch="gpt", **f) for f in GPT_VARIANTS]
                         + [dict(arch="mhc", **f) for f in MHC_VARIANTS]
                         + [dict(arch="bdh", bdh_mult=8), dict(arch="bdh", n_heads=2, bdh_mult=3)])
def test_parameter_count_matches_inventory(fields):
    model = build(vocab=50, seq=12, **fields)
    assert n_params(model) == inventory(model_cfg(**fields), 50, 12)


def test_golf_baseline_has_17_059_912_parameters():
    fields = dict(arch="gpt", n_layers=9, d_model=512, n_heads=8, n_kv_heads=4, activation="relu2",
                  mlp_mult=2.0, tie_embeddings=True, norm="rmsnorm", norm_weight=False, qk_norm=True,
                  golf_block=True)
    assert n_params(build(vocab=1024, seq=1024, meta=True, **fields)) == 17_059_912


@pytest.mark.parametrize("layers,d,heads,mult,expected", [
    (6, 256, 4, 128, 25_296_896),
    (4, 192, 4, 64, 7_176_192),
    (6, 256, 4, 96, 19_005_440),
    (8, 512, 8, 128, 100_925_440),
])
def test_bdh_parameter_counts(layers, d, heads, mult, expected):
    model = build(vocab=256, seq=512, meta=True, arch="bdh", n_layers=layers, d_model=d, n_heads=heads,
                  bdh_mult=mult)
    assert n_params(model) == expected


def test_every_shipped_preset_builds_with_the_inventory_count():
    paths = sorted(PRESETS.glob("*.toml"))
    assert paths, "no presets shipped"
    for path in paths:
        preset, _ = load(path)
        V = preset.data.vocab_size or 256
        with torch.device("meta"):
            model = build_model(preset.model, V, preset.data.seq_len)
        assert n_params(model) == inventory(preset.model, V, preset.data.seq_len), path.name


# -- behaviour shared by every family ------------------------------------------------------------

FAMILIES = {
    "gpt": dict(arch="gpt"),
    "gpt-golf": dict(arch="gpt", golf_block=True, n_layers=3, n_kv_heads=2, activation="relu2",
                     norm="rmsnorm", norm_weight=False, qk_norm=True, bigram_buckets=31, bigram_dim=8,
                     logit_softcap=30.0),
    "gpt-learned": dict(arch="gpt", pos="learned", activation="swiglu", tie_embeddings=False),
    "mhc-static": dict(arch="mhc", mhc_gate=True, mhc_stream_embed=True),
    "mhc-dynamic": dict(arch="mhc", mhc_mode="dynamic", mhc_stream_embed=True),
    "bdh": dict(arch="bdh", n_heads=2, bdh_mult=8),
}


def _perturb_weights(model):
    """Zero-initialised pieces (golf projections, bigram table, phi) would hide leaks at init."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("family", FAMILIES)
def test_causality(family):
    model = build(**FAMILIES[family])
    _perturb_weights(model)
    idx = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    logits, loss = model(idx)
    assert logits.shape == (2, 16, 64) and logits.dtype == torch.float32 and loss is None
    for s in (0, 7, 15):
        changed = idx.clone()
        changed[:, s] = (changed[:, s] + 1) % 64
        new, _ = model(changed)
        assert torch.allclose(new[:, :s], logits[:, :s], atol=1e-6, rtol=0), f"position {s} leaks backwards"
        assert not torch.allclose(new[:, s:], logits[:, s:]), "the change had no effect at all"


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_is_mean_cross_entropy(family):
    model = build(**FAMILIES[family])
    idx = torch.randint(0, 64, (2, 16))
    tgt = torch.randint(0, 64, (2, 16))
    logits, loss = model(idx, tgt)
    ref = -torch.log_softmax(logits, -1).gather(-1, tgt.unsqueeze(-1)).mean()
    assert torch.allclose(loss, ref, atol=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_generate(family):
    model = build(**FAMILIES[family])
    model.train()  # generate must switch to eval (dropout, gate noise) and back
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    a = generate(model, prompt, 15, temperature=1.0, top_k=5, seed=7)  # 18 > max_seq_len 16: cropped
    b = generate(model, prompt, 15, temperature=1.0, top_k=5, seed=7)
    c = generate(model, prompt, 15, temperature=1.0, top_k=5, seed=8)
    assert a.shape == (2, 18) and torch.equal(a[:, :3], prompt)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.training
    # top_k = 1 is greedy decoding, whatever the temperature and seed
    greedy = generate(model, prompt, 6, temperature=0.0)
    assert torch.equal(generate(model, prompt, 6, temperature=3.0, top_k=1, seed=1), greedy)
    logits, _ = model.eval()(greedy[:, :-1])
    assert torch.equal(greedy[:, 3:], logits[:, 2:].argmax(-1))


def test_generate_crops_the_context_to_max_seq_len():
    model = build(seq=8, arch="gpt", pos="learned")
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 9, dtype=torch.long))
    out = generate(model, torch.zeros(1, 6, dtype=torch.long), 10, seed=0)
    assert out.shape == (1, 16) and model.max_seq_len == 8


@pytest.mark.parametrize("family", FAMILIES)
def test_param_roles(family):
    model = build(**FAMILIES[family])
    roles = model.param_roles()
    params = dict(model.named_parameters())
    assert set(roles) == set(params)
    assert set(roles.values()) <= set(ROLES)
    for name, role in roles.items():
        leaf = name.rsplit(".", 1)[-1]
        if role == "matrix":
            assert params[name].ndim >= 2
            assert not any(k in name for k in ("emb", "norm", "hc_", "lm_head", "skip", "mix", "table"))
        if "hc_" in name or name == "stream_embed":
            assert role == "mhc", name
        if "norm" in name or leaf in ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "scale"):
            assert role == "scalar", name
    expected = {"tok_emb.weight": "embed", "embed.weight": "embed", "pos_emb.weight": "embed",
                "bigram.table.weight": "embed", "bigram.proj.weight": "matrix", "bigram.scale": "scalar",
                "lm_head.weight": "head", "lm_head": "head", "skip_weights": "scalar",
                "encoder": "matrix", "encoder_v": "matrix", "decoder": "matrix",
                "blocks.0.attn.c_q.weight": "matrix", "blocks.0.mlp.c_proj.weight": "matrix"}
    for name, role in expected.items():
        if name in roles:
            assert roles[name] == role, name


def test_diagnostics_of_gpt_and_bdh_are_plain_dicts():
    for family in ("gpt", "bdh"):
        d = build(**FAMILIES[family]).diagnostics(torch.zeros(1, 4, dtype=torch.long))
        assert isinstance(d, dict) and all(isinstance(v, float) for v in d.values())


def test_unknown_arch_is_an_error():
    with pytest.raises(ValueError, match="arch"):
        build_model(make_preset({"model.arch": "rnn"}).model, 10, 10)


# -- BigramHash ----------------------------------------------------------------------------------

def test_bigram_hash_formula():
    K = 97
    idx = torch.tensor([[5, 0, 1023, 1023, 7, 60000]])
    h = bigram_hash(idx, K).tolist()[0]
    toks = idx.tolist()[0]
    expected = [K - 1] + [((36313 * toks[t]) ^ (27191 * toks[t - 1])) % (K - 1) for t in range(1, len(toks))]
    assert h == expected


@pytest.mark.parametrize("dim", [8, 32])
def test_bigram_starts_as_a_no_op_and_trains(dim):
    with_bigram = build(arch="gpt", bigram_buckets=31, bigram_dim=dim)
    plain = build(arch="gpt")
    idx = torch.randint(0, 64, (2, 16))
    # the table starts at zero: same logits as the model without BigramHash (same seed, same weights)
    missing, unexpected = with_bigram.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("bigram.") for k in missing)
    assert torch.equal(with_bigram(idx)[0], plain(idx)[0])
    # ... but it gets a gradient: a zero table behind a zero projection never would
    _, loss = with_bigram(idx, idx)
    loss.backward()
    assert with_bigram.bigram.table.weight.grad.abs().sum() > 0


def test_generation_never_draws_ids_beyond_the_vocab_limit():
    """A model padded beyond its tokenizer's vocabulary must not sample the padding ids."""
    from tuiLM.models.generate import generate

    torch.manual_seed(0)
    model = build_model(make_preset({"model.n_layers": 1, "model.d_model": 16, "model.n_heads": 2}).model, 128, 16)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)  # large random logits: padding ids would be drawn often
    out = generate(model, torch.zeros(4, 1, dtype=torch.long), 64, temperature=2.0, seed=1, vocab_limit=65)
    assert int(out.max()) < 65
