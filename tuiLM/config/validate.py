"""Validation: the same rules in the CLI, in the form as you type, and at trainer start.

``validate(preset)`` returns problems; errors block a run, warnings are shown but do not.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from ..models.registry import family
from ..runs import check_run_name
from .load import Preset, Problem
from .schema import BY_PATH, FIELDS, Field

# The frozen-residual threshold of specs/mhc.md: beyond |c|/tau = 20 Sinkhorn returns exactly I in
# fp32 and no gradient reaches H_res or the gate.
FROZEN_RATIO = 20.0

Report = Callable[[str, str], None]  # err / warn: (key path, message)


def _range_problem(f: Field, v: Any) -> str | None:
    if f.choices is not None:
        if v not in f.choices:
            return f"must be one of {', '.join(f.choices)} (got {v!r})"
        return None
    if f.type not in (int, float):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return f"must be a finite number (got {v})"
    lo_bad = f.min is not None and (v <= f.min if f.min_exclusive else v < f.min)
    hi_bad = f.max is not None and (v >= f.max if f.max_exclusive else v > f.max)
    if lo_bad or hi_bad:
        return f"{v!r} is out of range: allowed {f.range_text()}"
    return None


def frozen_ratio(model: Any) -> float:
    """max |H_res off-diagonal init| / tau: the effective Sinkhorn logit gap at init."""
    return abs(model.mhc_h_res_init) / model.mhc_tau


PATH_FIELDS = ("data.path", "data.val_path", "data.tokenizer_model")


def missing_paths(preset: Preset, keys: tuple[str, ...] = PATH_FIELDS) -> list[tuple[str, str]]:
    """(key, value) of the path settings that name nothing here (neither from the working directory
    nor from the preset's folder, as ``launch`` resolves them; a glob that matches nothing). The
    built-in corpus reads no data.path."""
    import glob

    out = []
    for key in keys:
        value = str(preset.get(key) or "").strip()
        if not value or (key == "data.path" and preset.data.source == "builtin"):
            continue
        bases = [Path.cwd()] + ([Path(preset.source).resolve().parent] if preset.source is not None else [])
        if not any(os.path.exists(c := os.path.expanduser(str(base / Path(value).expanduser())))
                   or (any(ch in value for ch in "*?[") and glob.glob(c, recursive=True)) for base in bases):
            out.append((key, value))
    return out


def validate(preset: Preset, *, with_budget: bool = True) -> list[Problem]:
    out: list[Problem] = []
    lines = preset.lines

    def err(path: str, msg: str) -> None:
        out.append(Problem("error", path, msg, lines.get(path)))

    def warn(path: str, msg: str) -> None:
        out.append(Problem("warning", path, msg, lines.get(path)))

    bad: set[str] = set()
    for f in FIELDS:
        msg = _range_problem(f, preset.get(f.path))
        if msg:
            err(f.path, msg)
            bad.add(f.path)

    def ok(*paths: str) -> bool:  # cross-field rules only run on fields that passed their own check
        return not any(p in bad for p in paths)

    m, d, t = preset.model, preset.data, preset.train
    # an unknown family still gets the default family's checks on the shared keys
    fam = family(m.arch if ok("model.arch") else BY_PATH["model.arch"].default)

    # -- model -----------------------------------------------------------------------------------
    fam.rules(preset, ok, err, warn)

    if ok("run.name"):
        try:
            check_run_name(preset.run.name)
        except UserError as e:
            err("run.name", str(e).replace(f"bad run name {preset.run.name!r}: ", ""))

    # -- data ------------------------------------------------------------------------------------
    if ok("data.source") and d.source != "builtin" and not d.path.strip():
        err("data.path", f"data.source = {d.source!r} needs data.path")
    for key, where in missing_paths(preset, tuple(k for k in PATH_FIELDS if ok(k, "data.source"))):
        warn(key, f"{where}: no such file or folder on this machine")
    if ok("data.tokenizer") and d.tokenizer == "sentencepiece" and not d.tokenizer_model.strip():
        if not (d.source in ("shards", "nanogpt") and d.vocab_size > 0):
            err("data.tokenizer_model", "tokenizer = 'sentencepiece' needs data.tokenizer_model (a .model file)")
    if ok("data.source") and d.source == "shards":
        if d.vocab_size == 0 and not d.tokenizer_model.strip():
            err("data.vocab_size", "shards carry no vocabulary: set data.vocab_size or data.tokenizer_model")
        if not d.val_path.strip():
            warn("data.val_path", "no validation shards: evaluation will use the last shard's tail")
    # nanoGPT folders: tokenizer = 'char' is the character vocabulary of their meta.pkl
    if ok("data.source") and d.source == "shards" and d.tokenizer == "char":
        err("data.tokenizer", f"data.source = {d.source!r} holds token ids: the char tokenizer builds its "
                              f"vocabulary from text (use byte or sentencepiece, or source = 'text')")

    # -- batch -----------------------------------------------------------------------------------
    if ok("train.total_batch_size", "train.device_batch_size", "data.seq_len") and t.total_batch_size:
        per_step = t.device_batch_size * d.seq_len
        if t.total_batch_size % per_step:
            err("train.total_batch_size",
                f"total_batch_size ({t.total_batch_size}) must be a multiple of device_batch_size x "
                f"seq_len ({t.device_batch_size} x {d.seq_len} = {per_step}) times the number of devices")

    # -- schedule --------------------------------------------------------------------------------
    s = preset.schedule
    if ok("schedule.warmdown_steps", "train.max_steps") and s.warmdown_steps > t.max_steps:
        err("schedule.warmdown_steps", f"warmdown_steps ({s.warmdown_steps}) exceeds max_steps ({t.max_steps})")
    if ok("schedule.decay") and s.decay == "warmdown" and s.warmdown_steps == 0:
        err("schedule.warmdown_steps", "decay = 'warmdown' needs warmdown_steps > 0")
    if ok("schedule.warmup_steps", "train.max_steps") and s.warmup_steps > t.max_steps:
        err("schedule.warmup_steps", f"warmup_steps ({s.warmup_steps}) exceeds max_steps ({t.max_steps})")
    if (ok("schedule.warmup_steps", "schedule.warmdown_steps") and s.decay == "warmdown"
            and s.warmup_steps + s.warmdown_steps > t.max_steps):
        warn("schedule.warmup_steps", "warm-up and warmdown overlap: the peak learning rate is never reached")

    # -- cadences --------------------------------------------------------------------------------
    for path in ("eval.every", "checkpoint.every", "sample.every", "diag.every"):
        if path == "diag.every" and not fam.diagnostics:  # no diagnostics to miss
            continue
        v = preset.get(path)
        if ok(path, "train.max_steps") and v > t.max_steps:
            warn(path, f"{path} = {v} is more than max_steps ({t.max_steps}): it only happens at the end"
                 if path in ("eval.every", "checkpoint.every", "sample.every") else
                 f"{path} = {v} is more than max_steps ({t.max_steps}): diagnostics never run")
    if ok("eval.stride", "data.seq_len") and preset.eval.stride > d.seq_len:
        err("eval.stride", f"eval.stride ({preset.eval.stride}) cannot exceed seq_len ({d.seq_len})")

    # -- optimizer -------------------------------------------------------------------------------
    o = preset.optim
    if ok("optim.muon_momentum_start", "optim.muon_momentum") and o.muon_momentum_start > o.muon_momentum:
        warn("optim.muon_momentum_start", "momentum warms down instead of up (start > final)")

    # -- system ----------------------------------------------------------------------------------
    sysc = preset.system
    if sysc.dtype == "fp16" and sysc.device == "cpu":
        err("system.dtype", "fp16 training needs CUDA (a GradScaler); use bf16 or fp32 on the CPU")

    if with_budget and not any(p.is_error for p in out) and sysc.vram_budget_gib > 0:
        out.extend(_budget_problems(preset))
    return out


# -- the families' own rules (the records in tuiLM/models/registry.py point here) -----------------
# ``ok(*paths)``: those fields passed their own range check, so a cross-field rule may read them.

def gpt_rules(preset: Preset, ok: Callable[..., bool], err: Report, warn: Report) -> None:
    m = preset.model
    if ok("model.d_model", "model.n_heads") and m.d_model % m.n_heads:
        err("model.d_model", f"d_model ({m.d_model}) must be divisible by n_heads ({m.n_heads})")
    elif ok("model.d_model", "model.n_heads"):
        head_dim = m.d_model // m.n_heads
        if m.pos == "rope" and head_dim % 2:
            err("model.n_heads", f"RoPE needs an even head_dim; d_model/n_heads = {head_dim}")
    kv = m.n_kv_heads or m.n_heads
    if ok("model.n_heads", "model.n_kv_heads") and m.n_heads % kv:
        err("model.n_kv_heads", f"n_heads ({m.n_heads}) must be divisible by n_kv_heads ({kv})")
    if ok("model.bigram_buckets") and m.bigram_buckets == 1:
        err("model.bigram_buckets", "BigramHash needs at least 2 buckets (one is reserved); 0 turns it off")
    if ok("model.d_ff", "model.mlp_mult", "model.d_model") and m.d_ff == 0:
        if int(m.mlp_mult * m.d_model) < 1:
            err("model.mlp_mult", "mlp_mult x d_model gives an empty MLP")


def mhc_rules(preset: Preset, ok: Callable[..., bool], err: Report, warn: Report) -> None:
    gpt_rules(preset, ok, err, warn)
    m = preset.model
    if m.golf_block:
        err("model.golf_block", "golf_block (U-Net skips, residual mix) is not combined with mHC streams; "
                                "set golf_block = false or arch = 'gpt'")
    if ok("model.mhc_h_res_init", "model.mhc_tau"):
        ratio = frozen_ratio(m)
        if ratio > FROZEN_RATIO:
            why = (f"|off-diagonal init| / tau = {abs(m.mhc_h_res_init):g} / {m.mhc_tau:g} = {ratio:g} > "
                   f"{FROZEN_RATIO:g}")
            fix = (f"Keep |init| / tau <= {FROZEN_RATIO:g}: tau >= {abs(m.mhc_h_res_init) / FROZEN_RATIO:g} for "
                   f"this init, or |init| <= {FROZEN_RATIO * m.mhc_tau:g} for this tau")
            if m.mhc_h_res_init < 0:
                warn("model.mhc_h_res_init", f"H_res will be frozen at the identity: {why}, so Sinkhorn returns "
                     f"exactly I and b_res{' and the gate' if m.mhc_gate else ''} get zero gradient. {fix}")
            else:  # (a positive init starves the diagonal instead: each stream keeps none of itself)
                warn("model.mhc_h_res_init", f"H_res will start with a zero diagonal that cannot grow: {why}, so "
                     f"Sinkhorn gives each stream none of itself and the diagonal gets zero gradient. {fix}")
        if m.mhc_streams == 1:
            warn("model.mhc_streams", "one stream is a plain residual (hyper-connections found n = 1 worse "
                                      "than the baseline); n = 4 is the usual choice")
        if m.mhc_mode == "dynamic" and m.n_layers >= 20:
            warn("model.mhc_mode", "dynamic mHC at depth >= 20 traded Sinkhorn convergence against stream "
                                   "collapse in the users' experiments; static mode was stable")


def bdh_rules(preset: Preset, ok: Callable[..., bool], err: Report, warn: Report) -> None:
    m = preset.model
    if ok("model.d_model", "model.n_heads", "model.bdh_mult"):
        total = m.bdh_mult * m.d_model
        if total % m.n_heads:
            err("model.bdh_mult", f"bdh_mult x d_model ({total}) must be divisible by n_heads ({m.n_heads})")
        elif (total // m.n_heads) % 2:
            err("model.bdh_mult", f"neurons per head N = {total // m.n_heads} must be even for RoPE")
    if preset.optim.name == "muon":
        warn("optim.name", "BDH has no hidden matrices of the GPT kind: Muon will treat encoder/decoder "
                           "tensors as matrices; the reference recipe uses AdamW")


def _budget_problems(preset: Preset) -> list[Problem]:
    try:
        from ..estimate import estimate  # pure Python; imported late to keep config importable alone
    except ImportError:
        return []
    try:
        est = estimate(preset)
    except Exception as e:  # an estimator bug must not hide the rest of the validation
        return [Problem("warning", "system.vram_budget_gib", f"memory estimate unavailable: {e}")]
    budget = preset.system.vram_budget_gib * 2**30
    if est.total_bytes > budget:
        return [Problem("warning", "system.vram_budget_gib",
                        f"estimated peak {est.total_bytes / 2**30:.2f} GiB exceeds the budget "
                        f"{preset.system.vram_budget_gib:g} GiB (try `tuilm vram PRESET --fit`)",
                        preset.lines.get("system.vram_budget_gib"))]
    return []


def machine_problems(preset: Preset, world_size: int = 1) -> list[Problem]:
    """A warning when the memory estimate exceeds what this machine's device has (host RAM for the
    CPU, the visible CUDA device's total). Separate from ``validate``: it depends on the machine, not
    the preset, so the trainer and the tests of presets do not see it; ``tuilm validate`` / ``run``
    and the app's form do. Never imports torch."""
    from ..machine import device_memory, resolve_device

    device = resolve_device(preset.system.device)
    mem = device_memory(device) if device else None
    if mem is None:
        return []
    try:
        from ..estimate import estimate

        est = estimate(preset, world_size=world_size, device=device)
    except Exception:  # the estimate is advice; validate() already reports bad values
        return []
    procs = max(1, world_size) if device == "cpu" else 1  # CPU processes share the host's RAM; GPUs are one each
    if est.total_bytes * procs <= mem.total_bytes:
        return []
    where = "host RAM" if device == "cpu" else f"{mem.label}"
    each = f" ({procs} processes x {est.total_bytes / 2**30:.1f} GiB)" if procs > 1 else ""
    return [Problem("warning", "system.device",
                    f"estimated peak {est.total_bytes * procs / 2**30:.1f} GiB{each} exceeds this machine's {where} "
                    f"({mem.gib:.1f} GiB) on {device}: the run would likely be killed for memory "
                    f"(`tuilm vram PRESET --fit` proposes overrides that fit; `tuilm run --force` starts it anyway)",
                    preset.lines.get("system.device"))]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]
