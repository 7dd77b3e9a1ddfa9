"""The estimator against the real models (tuiLM.models): parameter inventory, artifact payload, optimizer
state, and saved activations — analytic vs exact (fake tensors) vs measured on real CPU steps."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from tuiLM.config.load import load  # noqa: E402
from tuiLM.estimate import estimate  # noqa: E402
from tuiLM.estimate.exact import exact, measure  # noqa: E402
from tuiLM.estimate.params import artifact_bytes, inventory  # noqa: E402

from .conftest import PRESETS, make_preset  # noqa: E402

models = pytest.importorskip("tuiLM.models")

# Three Sinkhorn iterations: enough to check the per-iteration tensors of the static (unrolled) path,
# and cheap under fake tensors (every small op costs the same fixed dispatch time there).
SMALL = {"model.n_layers": 2, "model.d_model": 32, "model.n_heads": 4, "model.dropout": 0.0,
         "data.seq_len": 32, "train.device_batch_size": 3, "model.mhc_iters": 3}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny steps run fastest on one thread (and do not fight the other tests for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

VARIANTS = {
    "gpt": {},
    "gpt-learned-pos": {"model.pos": "learned"},
    "gpt-untied": {"model.tie_embeddings": False},
    "gpt-swiglu": {"model.activation": "swiglu"},
    "gpt-relu2-rms": {"model.activation": "relu2", "model.norm": "rmsnorm"},
    "gpt-no-norm-weights-qk": {"model.norm": "rmsnorm", "model.norm_weight": False, "model.qk_norm": True},
    "gpt-bigram": {"model.bigram_buckets": 64, "model.bigram_dim": 8},
    "gpt-bigram-same-width": {"model.bigram_buckets": 64, "model.bigram_dim": 32},
    "gpt-golf": {"model.golf_block": True, "model.n_layers": 3, "model.norm": "rmsnorm", "model.norm_weight": False,
                 "model.qk_norm": True, "model.logit_softcap": 30.0},
    "gpt-golf-1-layer": {"model.golf_block": True, "model.n_layers": 1},
    "gpt-gqa": {"model.n_kv_heads": 2},
    "gpt-dropout": {"model.dropout": 0.1},
    "gpt-gqa-dropout": {"model.n_kv_heads": 1, "model.dropout": 0.1},
    "gpt-one-head": {"model.n_heads": 1, "model.qk_norm": True},
    "mhc-static": {"model.arch": "mhc"},
    "mhc-static-gate-embed": {"model.arch": "mhc", "model.mhc_gate": True, "model.mhc_stream_embed": True},
    "mhc-dynamic": {"model.arch": "mhc", "model.mhc_mode": "dynamic"},
    "mhc-dynamic-gate-embed": {"model.arch": "mhc", "model.mhc_mode": "dynamic", "model.mhc_gate": True,
                               "model.mhc_stream_embed": True, "model.mhc_streams": 2},
    "mhc-one-stream": {"model.arch": "mhc", "model.mhc_streams": 1, "model.mhc_stream_embed": True},
    "mhc-dropout": {"model.arch": "mhc", "model.dropout": 0.1, "model.mhc_streams": 3},
    "bdh": {"model.arch": "bdh", "model.bdh_mult": 8, "model.dropout": 0.1},
    "bdh-one-head": {"model.arch": "bdh", "model.bdh_mult": 4, "model.n_heads": 1},
    "bdh-one-sequence": {"model.arch": "bdh", "model.bdh_mult": 8, "train.device_batch_size": 1},
}


def small(name: str):
    return make_preset({**SMALL, **VARIANTS[name]})


def meta_model(preset, vocab: int):
    with torch.device("meta"):
        return models.build_model(preset.model, vocab, preset.data.seq_len)


def assert_inventory_matches(preset, vocab: int) -> None:
    model = meta_model(preset, vocab)
    roles = model.param_roles()
    real = {n: (tuple(p.shape), roles[n]) for n, p in model.named_parameters()}
    ours = {t.name: (t.shape, t.role) for t in inventory(preset.model, vocab, preset.data.seq_len)}
    assert ours == real
    assert estimate(preset, vocab).params == sum(p.numel() for p in model.parameters())


# -- parameters ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_inventory_equals_the_model_for_every_variant(name):
    assert_inventory_matches(small(name), 67)


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.toml")), ids=lambda p: p.stem)
def test_inventory_equals_the_model_for_every_shipped_preset(path):
    preset, problems = load(path)
    if any(p.is_error for p in problems):
        pytest.skip(f"{path.name} does not validate")
    assert_inventory_matches(preset, estimate(preset).vocab_size)


@pytest.mark.parametrize("name", ["gpt-golf", "gpt-bigram", "mhc-dynamic-gate-embed", "bdh", "gpt-untied"])
def test_artifact_payload_equals_the_quantised_state(name):
    """The estimate's int8 payload is the byte count of what tuiLM/train/artifact.py serialises
    (before zlib): widths chosen so that some matrices cross the 65,536-entry threshold."""
    from tuiLM.train.artifact import quantize_state_dict

    p = small(name).with_values({"model.d_model": 256, "model.n_heads": 4})
    model = models.build_model(p.model, 300, p.data.seq_len)
    state = quantize_state_dict(dict(model.state_dict()), model.param_roles())
    payload = 0
    for v in state.values():
        for t in (v.values() if isinstance(v, dict) else [v]):
            payload += t.numel() * t.element_size()
    tensors = inventory(p.model, 300, p.data.seq_len)
    assert any(len(t.shape) == 2 and t.numel > 65_536 for t in tensors)
    assert artifact_bytes(tensors) == payload


# -- memory: analytic vs exact vs measured ---------------------------------------------------------

@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_saved_activations_analytic_exact_and_measured_agree(name, dtype):
    """The claim: exact within 3 % and analytic within 10 % of a real CPU step's saved tensors."""
    p = small(name)
    measured = measure(p, vocab_size=67, dtype=dtype)
    counted = exact(p, vocab_size=67, dtype=dtype)
    analytic = estimate(p, 67, device="cpu", dtype=dtype)
    assert abs(counted.saved / measured.saved - 1) <= 0.03, (counted.saved, measured.saved)
    assert abs(analytic.saved_bytes / measured.saved - 1) <= 0.10, (analytic.activation_detail, measured.saved)
    for part in ("weights", "grads", "optimizer"):
        assert analytic.parts[part] == getattr(measured, part) == getattr(counted, part), part


@pytest.mark.parametrize("optim", ["adamw", "muon"])
@pytest.mark.parametrize("name", ["gpt-golf", "mhc-dynamic", "bdh"])
def test_optimizer_state_matches_the_real_optimizer(name, optim):
    p = small(name).with_values({"optim.name": optim})
    counted = exact(p, vocab_size=67)
    assert not counted.notes  # the real optimizer stepped under fake tensors
    assert estimate(p, 67).parts["optimizer"] == counted.optimizer


@pytest.mark.slow
def test_bdh_default_exact_count_matches_analytic_and_the_spec():
    path = PRESETS / "bdh-default.toml"
    p = load(path)[0] if path.exists() else make_preset({
        "model.arch": "bdh", "model.n_layers": 6, "model.d_model": 256, "model.n_heads": 4, "model.bdh_mult": 128,
        "data.seq_len": 512, "train.device_batch_size": 32})
    counted = exact(p, dtype="bf16")
    analytic = estimate(p, device="cpu", dtype="bf16")
    assert abs(analytic.saved_bytes / counted.saved - 1) <= 0.03
    assert 36 * 2**30 < counted.saved < 40 * 2**30  # specs/bdh.md: about 38 GiB


def test_vram_exact_and_measure_in_json():
    from typer.testing import CliRunner

    from tuiLM.cli import app

    sets = ["--set", "train.device_batch_size=2", "--set", "data.seq_len=32", "--set", "system.device=cpu"]
    r = CliRunner().invoke(app, ["vram", str(PRESETS / "quickstart.toml"), "--exact", "--measure", "--json", *sets]
                           if (PRESETS / "quickstart.toml").exists() else ["--help"])
    if not (PRESETS / "quickstart.toml").exists():
        pytest.skip("no quickstart preset")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["counted"]["cpu"]
    assert c["dtype"] == "fp32"
    assert c["exact"]["saved"] == c["measured"]["saved"] > 0
    assert abs(c["analytic"]["saved"] / c["exact"]["saved"] - 1) <= 0.10
