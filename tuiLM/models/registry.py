"""Model families as records: everything outside the model code that depends on the family.

One record per family (``model.arch``): the model and config classes, the estimator's parameter
inventory, activation model and FLOPs, the validation rules, the dashboard panels and the fit lever.
Code outside tuiLM/models asks ``family(arch)`` instead of branching on the name, so a new family is
one ``register`` call: validation, the estimator, ``tuilm vram --fit``, the editor form (the choices
of ``model.arch``) and the dashboard pick it up.

Stdlib only, and the model classes are named, not imported: the UI and the estimator read records
without loading torch. The built-in records are made on first use because their functions live in
the estimator and the validator, which import this module.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any, Callable

Rules = Callable[[Any, Callable[..., bool], Callable[[str, str], None], Callable[[str, str], None]], None]


@dataclass(frozen=True)
class Family:
    name: str  # the model.arch value
    title: str  # how the UI names it ("mHC")
    model: str | type  # the nn.Module, or "module:Class" imported when a model is built
    config: str | type  # its config dataclass, filled from the [model] section (``from_section``)
    inventory: Callable[[Any, int, int], list]  # (model section, vocab, seq_len) -> [estimate.params.Tensor]
    activations: Callable[[Any, int, int, int, Any], Any]  # (model, B, T, V, Precision) -> activations.Ledger
    flops: Callable[[Any, list, int, int], int]  # (model, tensors, vocab, seq_len) -> training FLOPs per token
    rules: Rules  # (preset, ok, err, warn): the family's cross-field checks (config/validate.py)
    width_step: Callable[[Any], int]  # fit lever: d_model moves in multiples of this and stays valid
    panels: tuple[str, ...] = ()  # dashboard panel groups of its own (tui/metrics.py PanelSpec.group)
    lead: tuple[str, ...] = ()  # panel keys its runs' first dashboard page leads with
    diagnostics: tuple[str, ...] = ()  # the diag event fields its runs can write (none: diag.every does not
    # matter, no frozen-residual check); a study may take one as its objective
    attention: str = ""  # its attention when not PyTorch SDPA (the exact mode names it; no SDPA notes)

    def model_class(self) -> type:
        return _load(self.model)

    def config_class(self) -> type:
        return _load(self.config)

    def build(self, section: Any, vocab_size: int, max_seq_len: int) -> Any:
        """The model for a preset's [model] section (imports torch)."""
        config = self.config_class().from_section(section, vocab_size, max_seq_len)
        return self.model_class()(config)


def _load(ref: str | type) -> type:
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)
    return ref


_FAMILIES: dict[str, Family] = {}
# what models/mhc.py's diagnostics() writes (gate_value with the gate, stream_embed_similarity with
# stream embeddings, the alpha_* in dynamic mode); tests/test_models_mhc.py keeps the two in step
MHC_DIAGNOSTICS = ("stream_similarity", "stream_spread", "stream_embed_similarity", "gate_value", "H_res_diag_mean",
                   "H_res_diag_mean_raw", "sinkhorn_row_err", "sinkhorn_col_err", "amax_fwd", "amax_bwd",
                   "alpha_pre", "alpha_post", "alpha_res")
_BUILTINS_LOADED = False
_LOCK = threading.RLock()  # the app's estimate worker and the UI thread may ask first at once


def _builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    with _LOCK:
        if not _BUILTINS_LOADED:
            _load_builtins()
            _BUILTINS_LOADED = True


def _load_builtins() -> None:
    from ..config.validate import bdh_rules, gpt_rules, mhc_rules
    from ..estimate import activations as act, core, fit, params

    mhc_panels = ("loss", "val_bpb", "H_res_diag_mean", "stream_similarity", "gate_value", "sinkhorn")
    for f in (
        Family("gpt", "GPT", "tuiLM.models.gpt:GPT", "tuiLM.models.gpt:GPTConfig", params.gpt_inventory,
               act.gpt_saved, core.gpt_flops, gpt_rules, fit.gpt_width_step),
        Family("mhc", "mHC", "tuiLM.models.mhc:MHC", "tuiLM.models.mhc:MHCConfig", params.mhc_inventory,
               act.mhc_saved, core.mhc_flops, mhc_rules, fit.gpt_width_step, panels=("mhc",),
               lead=mhc_panels, diagnostics=MHC_DIAGNOSTICS),
        Family("bdh", "BDH", "tuiLM.models.bdh:BDH", "tuiLM.models.bdh:BDHConfig", params.bdh_inventory,
               act.bdh_saved, core.bdh_flops, bdh_rules, fit.bdh_width_step,
               attention="BDH linear attention (full T x T scores)"),
    ):
        _FAMILIES[f.name] = f  # first: register() loads the built-ins before adding to them


def register(family: Family) -> None:
    """Add a family (its name becomes a choice of model.arch). Re-registering a name is an error."""
    _builtins()
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family


def unregister(name: str) -> None:
    _builtins()
    _FAMILIES.pop(name, None)


def families() -> tuple[Family, ...]:
    _builtins()
    return tuple(_FAMILIES.values())


def names() -> tuple[str, ...]:
    _builtins()
    return tuple(_FAMILIES)


def find(name: Any) -> Family | None:
    _builtins()
    return _FAMILIES.get(name) if isinstance(name, str) else None


def family(name: Any) -> Family:
    """The record for ``name``; ValueError naming the choices when there is none."""
    f = find(name)
    if f is None:
        raise ValueError(f"unknown model.arch {name!r} (expected one of {', '.join(names())})")
    return f
