"""Model families are records in one registry (tuiLM/models/registry.py): a family registered in a
test is picked up by validation, the estimator, the fit search, the editor form and model building,
and no code outside tuiLM/models branches on a family's name."""

from __future__ import annotations

import ast
import asyncio
from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from tuiLM.config.validate import validate  # noqa: E402
from tuiLM.estimate import estimate  # noqa: E402
from tuiLM.estimate.activations import F32, I64, Ledger  # noqa: E402
from tuiLM.estimate.fit import fit  # noqa: E402
from tuiLM.estimate.params import Tensor, count  # noqa: E402
from tuiLM.models import build_model, registry  # noqa: E402
from tuiLM.models.layers import config_from_section, default, lm_loss  # noqa: E402

from .conftest import ROOT, make_preset  # noqa: E402


# -- a toy family: embedding, n_layers square ReLU layers, an untied head -------------------------

@dataclass
class ToyConfig:
    vocab_size: int
    max_seq_len: int
    n_layers: int = default("n_layers")
    d_model: int = default("d_model")

    @classmethod
    def from_section(cls, section, vocab_size: int, max_seq_len: int):
        return config_from_section(cls, section, vocab_size=vocab_size, max_seq_len=max_seq_len)


class Toy(nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.max_seq_len = config.max_seq_len
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(nn.Linear(config.d_model, config.d_model, bias=False)
                                    for _ in range(config.n_layers))
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        x = self.embed(idx)
        for layer in self.layers:
            x = x + torch.relu(layer(x))
        logits = self.lm_head(x).float()
        return logits, lm_loss(logits, targets)


def toy_inventory(m, V: int, T: int) -> list[Tensor]:
    D = m.d_model
    return ([Tensor("embed.weight", (V, D), "embed", "embedding")]
            + [Tensor(f"layers.{i}.weight", (D, D), "matrix", "mlp") for i in range(m.n_layers)]
            + [Tensor("lm_head.weight", (V, D), "head", "lm_head")])


def toy_saved(m, B: int, T: int, V: int, p) -> Ledger:
    led = Ledger()
    led.add("embedding", B * T, I64)
    led.add("mlp", B * T * m.d_model, F32, 2 * m.n_layers)  # each layer's input and relu output
    led.add("logits", B * T * V, F32)
    return led


def toy_rules(preset, ok, err, warn) -> None:
    if ok("model.d_model") and preset.model.d_model % 8:
        err("model.d_model", f"the toy family needs d_model divisible by 8 (got {preset.model.d_model})")


TOY = registry.Family(
    "toy", "Toy", Toy, ToyConfig, toy_inventory, toy_saved,
    flops=lambda m, tensors, V, T: 6 * sum(t.numel for t in tensors if t.role in ("matrix", "head")),
    rules=toy_rules, width_step=lambda m: 8)

TOY_PRESET = {"model.arch": "toy", "model.n_layers": 2, "model.d_model": 64, "data.seq_len": 32,
              "train.device_batch_size": 4, "system.device": "cpu"}


@pytest.fixture
def toy():
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister("toy")
    assert "toy" not in registry.names()


def test_validation_accepts_the_family_and_runs_its_rules(toy):
    assert [p for p in validate(make_preset(TOY_PRESET)) if p.is_error] == []
    errs = [p for p in validate(make_preset({**TOY_PRESET, "model.d_model": 60})) if p.is_error]
    assert [(p.path, p.message) for p in errs] == [
        ("model.d_model", "the toy family needs d_model divisible by 8 (got 60)")]
    # the GPT rules are not the toy's: d_model 64 with 3 heads would fail them
    assert not [p for p in validate(make_preset({**TOY_PRESET, "model.n_heads": 3})) if p.is_error]


def test_an_unregistered_family_is_an_error_naming_the_choices():
    errs = [p for p in validate(make_preset({**TOY_PRESET})) if p.is_error]
    assert [p.path for p in errs] == ["model.arch"] and "gpt, mhc, bdh" in errs[0].message


def test_the_estimator_counts_the_real_model_of_the_family(toy):
    preset = make_preset(TOY_PRESET)
    est = estimate(preset, vocab_size=300)
    model = build_model(preset.model, 300, preset.data.seq_len)
    assert isinstance(model, Toy)
    assert est.arch == "toy" and est.params == sum(p.numel() for p in model.parameters())
    assert est.params == count(toy_inventory(preset.model, 300, 32)) == 300 * 64 * 2 + 2 * 64 * 64
    assert est.activation_detail["mlp"] == 4 * 32 * 64 * 4 * 4  # B*T*D fp32, 2 per layer, 2 layers
    assert est.flops_per_token == 6 * (2 * 64 * 64 + 300 * 64)


def test_fit_moves_d_model_in_the_family_steps(toy):
    preset = make_preset({**TOY_PRESET, "model.d_model": 1000, "train.device_batch_size": 1,
                          "data.seq_len": 64})
    base = estimate(preset, vocab_size=256)
    result = fit(preset, base.total_bytes * 0.6, vocab_size=256)
    assert result.fits and "model.d_model" in result.values
    assert result.values["model.d_model"] % 8 == 0 and result.values["model.d_model"] < 1000


def test_the_editor_form_offers_the_family_and_shows_its_fields(toy, tmp_path):
    from textual.widgets import Select

    from tuiLM.tui.app import make_app
    from tuiLM.tui.widgets.form import PresetForm

    path = tmp_path / "toy.toml"
    path.write_text('[model]\narch = "toy"\nd_model = 64\n')

    async def run():
        app = make_app(preset_path=path, runs_root=tmp_path / "runs")
        async with app.run_test(size=(120, 40)) as pilot:
            editor = app.screen
            form = editor.query_one(PresetForm)
            for _ in range(200):
                if form.row("model.d_ff") is not None and editor.estimate is not None:
                    break
                await pilot.pause(0.05)
            # the form selects a value only when it is one of the field's choices (else it is blank)
            arch = editor.query_one("#f-model--arch", Select).value
            msg = str(form.row("model.arch").query_one(".field-msg").render())
            return (arch, msg, form.row("model.d_model").display, form.row("model.d_ff").display,
                    editor.estimate.params)

    arch, msg, shared_shown, gpt_shown, params = asyncio.run(run())
    assert arch == "toy" and msg == ""
    assert shared_shown and not gpt_shown  # fields of other families are hidden
    assert params == 256 * 64 * 2 + 4 * 64 * 64  # the toy's inventory: byte vocabulary, 4 layers (default)


@pytest.mark.parametrize("name", ["gpt", "mhc", "bdh"])
def test_model_configs_default_to_the_schema(name):
    """One set of defaults: a config built without a preset equals one built from the default preset."""
    cls = registry.family(name).config_class()
    assert cls(vocab_size=256, max_seq_len=256) == cls.from_section(make_preset({"model.arch": name}).model, 256, 256)


# -- no code outside tuiLM/models branches on a family's name ---------------------------------------

def _names_the_arch(node: ast.AST) -> bool:
    """``arch``, ``x.arch``, ``x.get("arch")`` / ``x["arch"]``, ``setting("model.arch")``."""
    if isinstance(node, ast.Name):
        return node.id == "arch"
    if isinstance(node, ast.Attribute):
        return node.attr == "arch"
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        return node.args[0].value in ("arch", "model.arch")
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.slice.value in ("arch", "model.arch")
    return False


def _family_literal(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in names
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_family_literal(e, names) for e in node.elts)
    return False


def family_branches(root=ROOT) -> list[str]:
    """Comparisons of the architecture with a family's name in tuiLM, outside tuiLM/models."""
    names = set(registry.names())
    out = []
    for path in sorted((root / "tuiLM").rglob("*.py")):
        if "models" in path.relative_to(root / "tuiLM").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(_names_the_arch(s) for s in sides) and any(_family_literal(s, names) for s in sides):
                    out.append(f"{path.relative_to(root)}:{node.lineno}")
    return out


def test_no_branches_on_the_family_name_outside_the_models():
    assert family_branches() == []


def test_the_branch_check_finds_them(tmp_path):
    (tmp_path / "tuiLM" / "models").mkdir(parents=True)
    (tmp_path / "tuiLM" / "bad.py").write_text(
        'def f(m, model, arch):\n'
        '    if m.arch == "bdh" or model.get("arch") in ("gpt", "x"):\n'
        '        return arch != "mhc"\n'
        '    return m.norm == "gpt"  # not the architecture\n')
    (tmp_path / "tuiLM" / "models" / "fine.py").write_text('def f(m):\n    return m.arch == "bdh"\n')
    assert family_branches(tmp_path) == ["tuiLM/bad.py:2", "tuiLM/bad.py:2", "tuiLM/bad.py:3"]
