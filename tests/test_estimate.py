"""The analytic estimator: known parameter counts, the memory breakdown, fit suggestions, the vram
command. No torch here (tests/test_estimate_torch.py compares against the real models)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tuiLM.config.load import load
from tuiLM.config.validate import validate
from tuiLM.estimate import PARTS, estimate
from tuiLM.estimate.fit import fit
from tuiLM.estimate.params import INT8_MIN_NUMEL, artifact_bytes, inventory
from tuiLM.estimate.vocab import sentencepiece_vocab_size

from .conftest import PRESETS, ROOT, make_preset

GiB = 2**30

BDH_DEFAULT = {"model.arch": "bdh", "model.n_layers": 6, "model.d_model": 256, "model.n_heads": 4,
               "model.bdh_mult": 128, "data.seq_len": 512, "train.device_batch_size": 32}
GOLF_BASELINE = {"model.arch": "gpt", "model.n_layers": 9, "model.d_model": 512, "model.n_heads": 8,
                 "model.n_kv_heads": 4, "model.activation": "relu2", "model.mlp_mult": 2.0,
                 "model.norm": "rmsnorm", "model.norm_weight": False, "model.qk_norm": True,
                 "model.golf_block": True, "model.tie_embeddings": True, "data.vocab_size": 1024,
                 "data.tokenizer": "sentencepiece", "data.source": "shards", "data.path": "x", "data.val_path": "y"}


def preset_or_default(name: str, changes: dict):
    """The shipped preset when it exists (what users run), else the same model built in the test."""
    path = PRESETS / f"{name}.toml"
    if path.exists():
        preset, problems = load(path)
        assert not [p for p in problems if p.is_error], problems
        return preset
    return make_preset(changes)


# -- parameter counts ------------------------------------------------------------------------------

def test_bdh_default_has_the_published_parameter_count():
    assert estimate(preset_or_default("bdh-default", BDH_DEFAULT)).params == 25_296_896
    assert estimate(make_preset(BDH_DEFAULT)).params == 25_296_896


@pytest.mark.parametrize("layers,d,heads,mult,expected", [
    (4, 192, 4, 64, 7_176_192),
    (6, 256, 4, 96, 19_005_440),
    (8, 512, 8, 128, 100_925_440),
])
def test_bdh_tiers(layers, d, heads, mult, expected):
    p = make_preset({"model.arch": "bdh", "model.n_layers": layers, "model.d_model": d, "model.n_heads": heads,
                     "model.bdh_mult": mult})
    assert estimate(p).params == expected
    assert estimate(p.with_values({"model.n_layers": 1})).params == expected  # depth reuses the weights


def test_parameter_golf_baseline_count():
    assert estimate(make_preset(GOLF_BASELINE)).params == 17_059_912
    if (PRESETS / "golf-baseline.toml").exists():
        assert estimate(load(PRESETS / "golf-baseline.toml")[0]).params == 17_059_912


@pytest.mark.parametrize("changes,delta", [
    ({"model.pos": "learned"}, 256 * 64),  # T x D position table (seq_len 256)
    ({"model.tie_embeddings": False}, 256 * 64),  # a separate V x D head
    ({"model.activation": "swiglu"}, 2 * 64 * 256),  # the gate matrix, per layer
    ({"model.bigram_buckets": 100, "model.bigram_dim": 16}, 100 * 16 + 16 * 64 + 1),
    ({"model.bigram_buckets": 100, "model.bigram_dim": 64}, 100 * 64 + 1),  # no projection at d_b = D
    ({"model.n_kv_heads": 2}, -2 * 2 * 64 * 32),  # k and v shrink to 2 heads of 16
    ({"model.norm": "rmsnorm"}, -(2 * 2 + 1) * 64),  # no biases
    ({"model.norm_weight": False}, -(2 * 2 + 1) * 2 * 64),
    ({"model.golf_block": True}, 2 * (4 * 64 + 4) + 64),  # scales, mix, q gain; one skip weight row
])
def test_gpt_feature_costs(changes, delta):
    base = {"model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4}
    before = estimate(make_preset(base)).params
    assert estimate(make_preset({**base, **changes})).params - before == delta


@pytest.mark.parametrize("changes,per_site", [
    ({}, 4 + 4 + 16),
    ({"model.mhc_gate": True}, 4 + 4 + 16 + 1),
    ({"model.mhc_mode": "dynamic"}, 4 + 4 + 16 + 4 * 64 * 24 + 3),
    ({"model.mhc_streams": 1}, 0),
])
def test_mhc_site_parameters(changes, per_site):
    base = {"model.arch": "mhc", "model.n_layers": 3, "model.d_model": 64, "model.n_heads": 4}
    gpt = estimate(make_preset({**base, "model.arch": "gpt"})).params
    assert estimate(make_preset({**base, **changes})).params - gpt == 2 * 3 * per_site
    embed = estimate(make_preset({**base, **changes, "model.mhc_stream_embed": True})).params
    streams = changes.get("model.mhc_streams", 4)
    assert embed - gpt - 2 * 3 * per_site == (streams * 64 if streams > 1 else 0)


def test_params_by_part_sums_to_the_total():
    for changes in ({}, GOLF_BASELINE, BDH_DEFAULT, {"model.arch": "mhc", "model.mhc_mode": "dynamic"},
                    {"model.bigram_buckets": 64, "model.tie_embeddings": False}):
        e = estimate(make_preset(changes))
        assert sum(e.params_by_part.values()) == e.params
        assert all(v > 0 for v in e.params_by_part.values())


# -- the memory breakdown --------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [{}, BDH_DEFAULT, GOLF_BASELINE, {"model.arch": "mhc"},
                                     {"model.arch": "mhc", "model.mhc_mode": "dynamic", "model.dropout": 0.0}])
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_breakdown_parts_are_positive_where_they_should_be_and_sum_to_the_total(changes, device):
    p = make_preset(changes)
    e = estimate(p, device=device)
    assert set(e.parts) == set(PARTS)
    assert sum(e.parts.values()) == e.total_bytes
    for part in ("weights", "grads", "optimizer", "activations", "logits"):
        assert e.parts[part] > 0, part
    assert e.parts["weights"] == e.parts["grads"] == 4 * e.params
    assert (e.parts["mhc"] > 0) == (p.model.arch == "mhc")
    assert e.parts["ddp"] == 0
    assert (e.parts["overhead"] > 0) == (device == "cuda")
    assert e.device == device and e.dtype == ("bf16" if device == "cuda" else "fp32")
    assert sum(e.activation_detail.values()) == e.saved_bytes
    ddp = estimate(p, world_size=4, device=device)
    assert ddp.parts["ddp"] == 4 * e.params
    assert ddp.tokens_per_step == 4 * e.tokens_per_step


def test_one_stream_mhc_costs_what_the_plain_gpt_costs():
    base = {"model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4}
    gpt = estimate(make_preset(base))
    one = estimate(make_preset({**base, "model.arch": "mhc", "model.mhc_streams": 1}))
    assert one.params == gpt.params and one.total_bytes == gpt.total_bytes and one.parts["mhc"] == 0


def test_optimizer_state_adamw_and_muon():
    p = make_preset(GOLF_BASELINE)
    tensors = inventory(p.model, 1024, p.data.seq_len)
    matrices = sum(t.numel for t in tensors if t.role == "matrix")
    adam = estimate(p.with_values({"optim.name": "adamw"})).parts["optimizer"]
    muon = estimate(p.with_values({"optim.name": "muon"})).parts["optimizer"]
    assert adam == 8 * estimate(p).params + 4 * len(tensors)  # two moments + a step counter per tensor
    assert adam - muon == 4 * matrices + 4 * sum(t.role == "matrix" for t in tensors)


def test_device_and_dtype_assumptions():
    p = make_preset()
    assert estimate(p).device == "cuda" and "auto" in estimate(p).assumption
    cpu = estimate(p.with_values({"system.device": "cpu"}))
    assert (cpu.device, cpu.dtype, cpu.parts["overhead"]) == ("cpu", "fp32", 0)
    assert estimate(p, device="cpu", dtype="bf16").dtype == "bf16"
    assert estimate(p, dtype="fp32").parts["activations"] > estimate(p).parts["activations"]


@pytest.mark.parametrize("changes", [{}, BDH_DEFAULT, GOLF_BASELINE,
                                     {"model.arch": "mhc", "model.mhc_mode": "dynamic", "model.mhc_gate": True}])
def test_activation_memory_is_linear_in_batch(changes):
    p = make_preset(changes)

    def act(b):
        e = estimate(p.with_values({"train.device_batch_size": b}), device="cpu", dtype="fp32")
        return e.parts["activations"] + e.parts["mhc"] + e.parts["logits"]

    # affine in B (per-step constants: rope tables, static Sinkhorn), and the per-sequence slope dominates
    assert act(8) - act(4) == 2 * (act(4) - act(2)) == 4 * (act(3) - act(2))
    assert 1.9 < act(16) / act(8) <= 2.0


def test_bdh_saved_activations_match_the_spec_figures():
    """specs/bdh.md: eager saved activations at B=32, T=512 measured on CPU with saved-tensor hooks
    (bf16 autocast): about 38 GiB default, 29 GiB at mult 96, 10 GiB for (4, 192, 4, 64)."""
    for changes, gib in (({}, 38), ({"model.bdh_mult": 96}, 29),
                         ({"model.n_layers": 4, "model.d_model": 192, "model.bdh_mult": 64}, 10)):
        e = estimate(make_preset({**BDH_DEFAULT, **changes}), device="cpu", dtype="bf16")
        assert abs(e.saved_bytes / GiB - gib) / gib < 0.10, (changes, e.saved_bytes / GiB)
    big = estimate(make_preset({**BDH_DEFAULT, "model.n_layers": 8, "model.d_model": 512, "model.n_heads": 8,
                                "model.bdh_mult": 128}))
    assert big.total_bytes > 80 * 10**9  # the spec: does not fit 80 GB at B=32 in eager mode


def test_large_vocabulary_shows_in_the_logits_row():
    small = estimate(make_preset({"data.vocab_size": 256}))
    big = estimate(make_preset({"data.vocab_size": 50_304}))
    B, T = 16, 256
    # saved log-probs, returned logits, their gradient (fp32) + the head's bf16 output
    assert big.parts["logits"] - small.parts["logits"] == (3 * 4 + 2) * B * T * (50_304 - 256)
    cpu = [estimate(make_preset({"data.vocab_size": v}), device="cpu").parts["logits"] for v in (256, 50_304)]
    assert cpu[1] - cpu[0] == 3 * 4 * B * T * (50_304 - 256)


@pytest.mark.parametrize("path,value", [("model.n_heads", 0), ("data.seq_len", 0), ("train.device_batch_size", 0),
                                        ("model.n_layers", 10**6), ("model.arch", "rnn"), ("model.mhc_streams", 0)])
def test_out_of_range_inputs_name_the_key(path, value):
    """The form estimates half-typed presets: a bad field is a ValueError naming it, never a crash."""
    with pytest.raises(ValueError, match=path):
        estimate(make_preset({path: value}))


def test_tokens_per_step_and_accumulation():
    e = estimate(make_preset({"train.device_batch_size": 8, "data.seq_len": 128, "train.total_batch_size": 8192}))
    assert (e.tokens_per_step, e.grad_accum) == (8192, 8)
    e = estimate(make_preset({"train.device_batch_size": 8, "data.seq_len": 128}))
    assert (e.tokens_per_step, e.grad_accum) == (1024, 1)


def test_flops_per_token_is_six_n_plus_attention():
    p = make_preset({"model.n_layers": 2, "model.d_model": 64, "model.n_heads": 4, "data.seq_len": 100})
    e = estimate(p)
    matmul_params = e.params - 2 * (2 * 2 * 64) - 2 * 64  # everything but the norms (tied head counts once)
    assert e.flops_per_token == 6 * matmul_params + 12 * 2 * 100 * 64


# -- vocabulary --------------------------------------------------------------------------------------

def _sp_model(n_pieces: int) -> bytes:
    """A minimal SentencePiece ModelProto: n pieces (field 1) and a trainer spec (field 2)."""
    def field(num: int, payload: bytes) -> bytes:
        return bytes([num << 3 | 2, len(payload)]) + payload

    out = b""
    for i in range(n_pieces):
        piece = field(1, f"p{i}".encode()) + bytes([2 << 3 | 5]) + struct.pack("<f", -i)
        out += field(1, piece)
    return out + field(2, field(1, b"corpus.txt"))


def test_vocabulary_resolution(tmp_path):
    assert estimate(make_preset()).vocab_size == 256 and estimate(make_preset()).vocab_exact
    char = estimate(make_preset({"data.tokenizer": "char"}))
    assert char.vocab_size == 256 and not char.vocab_exact and char.notes
    assert estimate(make_preset({"data.vocab_size": 1000})).vocab_size == 1000
    model = tmp_path / "sp.model"
    model.write_bytes(_sp_model(37))
    assert sentencepiece_vocab_size(model) == 37
    sp = estimate(make_preset({"data.tokenizer": "sentencepiece", "data.tokenizer_model": str(model)}))
    assert (sp.vocab_size, sp.vocab_exact) == (37, True)
    missing = estimate(make_preset({"data.tokenizer": "sentencepiece", "data.tokenizer_model": "nope.model"}))
    assert not missing.vocab_exact
    (tmp_path / "bad.model").write_bytes(b"\x0f\x00")
    with pytest.raises(ValueError):
        sentencepiece_vocab_size(tmp_path / "bad.model")
    assert estimate(make_preset(), vocab_size=77).vocab_size == 77


# -- artifact --------------------------------------------------------------------------------------

def test_artifact_upper_bound_rules():
    p = make_preset(GOLF_BASELINE)
    tensors = inventory(p.model, 1024, p.data.seq_len)
    expected = 0
    for t in tensors:
        if len(t.shape) == 2 and t.numel > INT8_MIN_NUMEL:
            expected += t.numel + 2 * t.shape[0]
        else:
            expected += (4 if t.role in ("scalar", "mhc") else 2) * t.numel
    assert artifact_bytes(tensors) == expected == estimate(p).artifact_bytes_upper
    # the baseline's published artifact (int8 + zlib + code) is 15,863,489 bytes: the payload bounds it
    assert 15_863_489 - 100_000 < estimate(p).artifact_bytes_upper < 1.1 * 15_863_489


# -- fit ------------------------------------------------------------------------------------------

FIT_CASES = [  # (shipped preset, the same model for a checkout without it, budget, the lever it needs)
    ("bdh-default", BDH_DEFAULT, 14 * GiB, "train.device_batch_size"),
    ("bdh-default", BDH_DEFAULT, 2 * GiB, "data.seq_len"),
    ("golf-baseline", GOLF_BASELINE, 6 * GiB, "train.device_batch_size"),
    ("mhc-v4a", {"model.arch": "mhc", "model.n_layers": 20, "model.d_model": 1280, "model.n_heads": 10,
                 "model.mhc_mode": "dynamic", "data.seq_len": 2048, "train.device_batch_size": 4,
                 "train.total_batch_size": 32768}, 12 * GiB, "train.device_batch_size"),
    ("quickstart", {"model.n_layers": 2, "model.d_model": 128}, 0.53 * GiB, "train.device_batch_size"),
    (None, {"model.d_model": 1024, "model.n_heads": 8, "model.n_layers": 8}, 2 * GiB, "model.d_model"),
]


@pytest.mark.parametrize("name,changes,budget,lever", FIT_CASES)
def test_fit_suggestions_fit_and_validate(name, changes, budget, lever):
    p = preset_or_default(name, changes) if name else make_preset(changes)
    before = estimate(p)
    assert before.total_bytes > budget
    r = fit(p, budget)
    assert r.fits, r.reason
    assert r.changes and r.estimate.total_bytes <= budget
    # apply the overrides the way a user would, through --set parsing
    fixed, problems = load(p.source, r.changes) if p.source else (p.with_values(r.values), [])
    assert not [x for x in problems + validate(fixed) if x.is_error]
    after = estimate(fixed)
    assert after.total_bytes == r.estimate.total_bytes <= budget
    assert after.tokens_per_step == before.tokens_per_step  # the optimisation is unchanged
    keys = [c.split("=")[0] for c in r.changes]
    assert lever in keys
    levers = ["train.device_batch_size", "data.seq_len", "model.d_model"]
    assert not any(k in keys for k in levers[levers.index(lever) + 1:])  # no later lever than needed
    # smallest change: the next larger batch (at the chosen context and width) does not fit
    if "train.device_batch_size" in keys and after.batch_size * 2 <= p.train.device_batch_size:
        bigger = fixed.with_values({"train.device_batch_size": after.batch_size * 2})
        assert estimate(bigger).total_bytes > budget


@pytest.mark.parametrize("changes,budget", [
    ({"model.d_model": 1024, "model.n_heads": 8, "model.n_layers": 8}, 2 * GiB),
    ({"model.d_model": 65536, "model.n_heads": 8, "model.n_layers": 512}, 14 * GiB),
    ({"model.arch": "bdh", "model.d_model": 4096, "model.n_heads": 4, "model.bdh_mult": 128}, 3 * GiB),
])
def test_fit_finds_the_widest_width_that_fits_by_bisection(changes, budget):
    """The width lever keeps the widest width at which anything fits (the next wider one does not fit even
    at its shortest context and batch 1), without estimating every width one by one (a 65536-wide model
    has 1,024 smaller widths: that took minutes)."""
    from tuiLM.estimate.fit import _widths

    p = make_preset(changes)
    r = fit(p, budget)
    assert r.fits and "model.d_model" in r.values, r.reason
    widths = _widths(p)
    i = widths.index(r.values["model.d_model"])
    assert r.tried < 200
    if i > 0:  # the next wider width at its smallest: shortest context the step allows, batch 1
        t0, b0 = p.data.seq_len, p.train.device_batch_size
        tokens = p.train.total_batch_size or t0 * b0
        shortest = min(t for t in (t0 >> k for k in range(12)) if t >= min(t0, 64) and tokens % t == 0)
        wider = p.with_values({"model.d_model": widths[i - 1], "data.seq_len": shortest,
                               "train.device_batch_size": 1, "train.total_batch_size": tokens})
        assert estimate(wider).total_bytes > budget


def test_fit_keeps_an_explicit_total_batch_size_and_sets_an_implicit_one():
    p = make_preset({**BDH_DEFAULT, "train.total_batch_size": 65536})
    r = fit(p, 14 * GiB)
    assert "train.total_batch_size=65536" not in r.changes  # already explicit: unchanged, not repeated
    assert r.estimate.tokens_per_step == 65536
    r = fit(make_preset(BDH_DEFAULT), 14 * GiB)
    assert "train.total_batch_size=16384" in r.changes  # 32 x 512 made explicit


def test_fit_when_already_fitting_and_when_impossible():
    p = make_preset()
    assert fit(p, 100 * GiB).changes == [] and fit(p, 100 * GiB).fits
    r = fit(p, 10 * 2**20)  # 10 MiB: below the CUDA context alone
    assert not r.fits and r.changes == [] and "GiB" in r.reason
    assert fit(p, 10 * 2**20, device="cpu").fits  # on the CPU there is no context to pay


# -- the vram command -------------------------------------------------------------------------------

def _bdh_ref(tmp_path) -> str:
    path = PRESETS / "bdh-default.toml"
    if path.exists():
        return str(path)
    text = "[model]\narch='bdh'\nn_layers=6\nd_model=256\nn_heads=4\nbdh_mult=128\n[data]\nseq_len=512\n" \
           "[train]\ndevice_batch_size=32\n"
    out = tmp_path / "bdh-default.toml"
    out.write_text(text)
    return str(out)


def test_vram_fit_prints_the_count_and_a_fitting_suggestion(tmp_path):
    ref = _bdh_ref(tmp_path)
    r = CliRunner().invoke(__import__("tuiLM.cli", fromlist=["app"]).app,
                           ["vram", ref, "--budget", "14GiB", "--fit"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "25,296,896" in r.output
    assert "over budget" in r.output
    assert f"tuilm run {ref} --set train.device_batch_size=8 --set train.total_batch_size=16384" in r.output


def test_vram_exit_codes(tmp_path):
    from tuiLM.cli import app

    ref = _bdh_ref(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["vram", ref]).exit_code == 0  # no budget
    assert runner.invoke(app, ["vram", ref, "--budget", "80GiB"]).exit_code == 0  # fits
    over = runner.invoke(app, ["vram", ref, "--budget", "14GiB"])
    assert over.exit_code == 1 and "over budget" in over.output
    assert runner.invoke(app, ["vram", ref, "--budget", "0.1GiB", "--fit"]).exit_code == 1  # nothing fits
    # the preset's own budget applies when --budget is not given
    assert runner.invoke(app, ["vram", ref, "--set", "system.vram_budget_gib=14"]).exit_code == 1


def test_vram_json_is_one_parseable_object(tmp_path):
    from tuiLM.cli import app

    ref = _bdh_ref(tmp_path)
    r = CliRunner().invoke(app, ["vram", ref, "--json", "--budget", "14GiB", "--fit", "--nproc", "2"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    e = obj["estimate"]
    assert e["params"] == 25_296_896 and e["world_size"] == 2 and e["parts"]["ddp"] == 4 * e["params"]
    assert sum(e["parts"].values()) == e["total_bytes"]
    assert obj["fits"] is False and obj["fit"]["fits"] and obj["fit"]["changes"]
    assert obj["exit_code"] == 0 and obj["counted"] is None
    assert "\x1b[" not in r.stdout and "[bold" not in r.stdout


def test_counted_tables_render_for_cpu_and_cuda_results():
    """The --exact / --measure tables, fed plain data (the CUDA branch cannot run without a GPU)."""
    from rich.console import Console

    from tuiLM.estimate.report import render_counted

    rows = {"weights": 400, "grads": 400, "optimizer": 804, "saved": 10_000}
    counted = {"attention_kernel": "SDPA, cuda kernel choice", "peak_allocated": 20_000, **rows}
    data = {"cpu": {"dtype": "fp32", "analytic": rows, "exact": dict(rows, saved=10_100), "measured": None},
            "cuda": {"dtype": "bf16", "analytic": dict(rows, total_without_overhead=19_000), "measured": counted}}
    console = Console(record=True, width=120)
    console.print(render_counted(data))
    text = console.export_text()
    assert "CPU kernels, fp32" in text and "CUDA kernels, bf16" in text
    assert "0.990" in text  # 10,000 / 10,100
    assert "peak allocated" in text and "0.950" in text  # 19,000 / 20,000


def test_estimator_and_vram_command_do_not_import_torch():
    code = ("import sys; from tuiLM.estimate import estimate; from tuiLM.estimate.report import vram_command; "
            "from tuiLM.estimate.fit import fit; from tuiLM.estimate import exact; "
            "from tuiLM.config.load import default_preset; p = default_preset(); estimate(p); "
            "fit(p, 2**30); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)



@pytest.mark.parametrize("here", ["cpu", "cuda"])
def test_vram_says_where_an_auto_run_trains_on_a_machine_without_cuda(here, monkeypatch):
    """device = auto is estimated for CUDA (will it fit my GPU); without one here the run trains on the
    CPU, and vram says so with that figure (a laptop user read only the CUDA one)."""
    import io

    from rich.console import Console

    from tuiLM import machine
    from tuiLM.estimate.report import vram_command

    monkeypatch.setattr(machine, "resolve_device", lambda pref: here)
    preset = load(PRESETS / "quickstart.toml")[0]
    out = io.StringIO()
    vram_command(preset, budget_bytes=None, fit=False, as_json=False, exact=False, measure=False, world_size=1,
                 console=Console(file=out, width=300))
    cpu = estimate(preset, device="cpu")
    said = [l for l in out.getvalue().splitlines() if l.startswith("note: no CUDA on this machine")]
    if here == "cpu":
        from tuiLM.units import fmt_bytes

        assert len(said) == 1 and f"peak {fmt_bytes(cpu.total_bytes)} of host RAM" in said[0]
        assert cpu.total_bytes < estimate(preset).total_bytes  # no CUDA context, fp32 on the CPU
    else:
        assert not said
