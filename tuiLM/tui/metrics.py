"""What the dashboard plots: panels, their series, good/bad bands, and the frozen-residual check.

Bands come from the users' mHC experiment table (shared/seeds) and specs/mhc.md:

    stream_similarity     good < 0.2        bad > 0.4
    gate_value            good 0.3 - 0.7    bad ~1.0 (saturated); stuck at its init = frozen
    sinkhorn_*_err        good < 1e-6       bad > 0.01
    H_res_diag_mean       good 0.4 - 0.8    bad ~1.0 (identity) or ~1/n (uniform averaging)
    val_bpb               good < 1.0        bad > 1.2   (that log's target; here only with eval.target_bpb)

Bands apply where they mean something: the mHC table's bands only on the mHC panels, val_bpb bands
only when the preset declares a target. Fixed y ranges (H_res diagonal [1/n, 1], gate [0, 1], stream
similarity [-1, 1], Sinkhorn error on a log scale down to a floor) keep float noise from filling a panel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..models import registry

INF = math.inf


@dataclass(frozen=True)
class Band:
    lo: float
    hi: float
    kind: str  # "good" | "bad"

    def contains(self, v: float) -> bool:
        return self.lo <= v <= self.hi


@dataclass(frozen=True)
class Line:
    """One series of a panel: a column of an event kind (train, eval or diag)."""

    kinds: tuple[str, ...]  # first kind that has the column wins (diagnostics may ride in train)
    column: str
    label: str
    smooth: bool = True  # EMA applies (dense, noisy series); eval points are not smoothed
    secondary: bool = False  # drawn dimmer (e.g. the raw Sinkhorn diag next to the gated one)


Settings = dict[str, dict[str, Any]]  # the run's resolved preset, section -> key -> value
YRange = Callable[[Settings], tuple[float, float]]


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    lines: tuple[Line, ...]
    bands: Callable[[Settings], tuple[Band, ...]] = field(default=lambda settings: ())
    log_default: bool = False
    mhc: bool = False
    optional: bool = False  # hidden while no run has a non-zero value (memory on a CPU run)
    group: str = "core"  # "core" | "mhc" | "system": the dashboard pages through groups
    yrange: YRange | None = None  # a fixed y range the data can only widen (meaningful scales)
    log_floor: float = 0.0  # log scale: values <= 0 are drawn at this floor (exact zeros)
    floor_label: str = ""  # what a value at the floor means (legend text)
    off: Callable[[Settings], str] = field(default=lambda settings: "")  # why the panel has no data


def _model(settings: Settings) -> dict[str, Any]:
    return settings.get("model", {}) or {}


def _bands_val_bpb(settings: Settings) -> tuple[Band, ...]:
    """Only a preset that declares eval.target_bpb gets bands: a byte-level CPU run at 2.2 bpb is not
    "bad", it is a different experiment. Good at or below the target, bad above 1.2 x it (the mHC log's
    1.0 / 1.2 ratio)."""
    target = float((settings.get("eval", {}) or {}).get("target_bpb", 0.0) or 0.0)
    if target <= 0:
        return ()
    return (Band(-INF, target, "good"), Band(1.2 * target, INF, "bad"))


def _bands_stream(_: Settings) -> tuple[Band, ...]:
    return (Band(-INF, 0.2, "good"), Band(0.4, INF, "bad"))


def _bands_gate(_: Settings) -> tuple[Band, ...]:
    return (Band(0.3, 0.7, "good"), Band(0.95, INF, "bad"))


def _streams(settings: Settings) -> int:
    return max(1, int(_model(settings).get("mhc_streams", 4) or 4))


def _bands_hres(settings: Settings) -> tuple[Band, ...]:
    n = _streams(settings)
    out = [Band(0.4, 0.8, "good"), Band(0.98, INF, "bad")]
    if n > 1:
        out.append(Band(-INF, 1.0 / n + 0.02, "bad"))
    return tuple(out)


def _bands_sinkhorn(_: Settings) -> tuple[Band, ...]:
    return (Band(-INF, 1e-6, "good"), Band(0.01, INF, "bad"))


def _range_hres(settings: Settings) -> tuple[float, float]:
    """A doubly-stochastic matrix's diagonal mean lies in [1/n, 1]: uniform averaging .. identity."""
    return (1.0 / _streams(settings), 1.0)


def _gate_off(settings: Settings) -> str:
    return "" if _model(settings).get("mhc_gate", False) else "gate off"


SINKHORN_FLOOR = 1e-9  # below float32 resolution of a row sum: an exact 0 is drawn here

TR, EV, DG = ("train",), ("eval",), ("diag", "train")

PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("loss", "loss", (Line(TR, "loss", "train"), Line(EV, "val_loss", "val", smooth=False))),
    PanelSpec("val_bpb", "val bpb", (Line(EV, "val_bpb", "val_bpb", smooth=False),), _bands_val_bpb),
    PanelSpec("lr", "learning rate", (Line(TR, "lr", "lr", smooth=False),)),
    PanelSpec("grad_norm", "grad norm", (Line(TR, "grad_norm", "grad_norm"),)),
    PanelSpec("tokens_per_s", "tokens/s", (Line(TR, "tokens_per_s", "tokens/s"),)),
    PanelSpec("mem_gib", "memory GiB", (Line(TR, "mem_gib", "mem", smooth=False),), optional=True),
    PanelSpec("gate_value", "gate value", (Line(DG, "gate_value", "gate", smooth=False),), _bands_gate,
              mhc=True, group="mhc", yrange=lambda s: (0.0, 1.0), off=_gate_off),
    PanelSpec("H_res_diag_mean", "H_res diag mean",
              (Line(DG, "H_res_diag_mean", "used", smooth=False),
               Line(DG, "H_res_diag_mean_raw", "raw", smooth=False, secondary=True)), _bands_hres, mhc=True,
              group="mhc", yrange=_range_hres),
    PanelSpec("stream_similarity", "stream similarity",
              (Line(DG, "stream_similarity", "streams", smooth=False),
               Line(DG, "stream_embed_similarity", "embed", smooth=False, secondary=True)), _bands_stream,
              mhc=True, group="mhc", yrange=lambda s: (-1.0, 1.0)),
    PanelSpec("sinkhorn", "Sinkhorn error",
              (Line(DG, "sinkhorn_col_err", "col", smooth=False),
               Line(DG, "sinkhorn_row_err", "row", smooth=False, secondary=True)), _bands_sinkhorn,
              log_default=True, mhc=True, group="mhc", yrange=lambda s: (SINKHORN_FLOOR, 1.0),
              log_floor=SINKHORN_FLOOR, floor_label="exact 0 = frozen signature"),
)

# Hardware and throughput (train-event fields written by train/sysmetrics.py and the trainer's MFU):
# all optional, since a CPU run has no GPU fields and a run without a known peak has no MFU.
SYSTEM_PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("mfu", "MFU", (Line(TR, "mfu", "mfu"),), optional=True, group="system"),
    PanelSpec("flops_per_s", "model FLOP/s", (Line(TR, "flops_per_s", "FLOP/s"),), optional=True, group="system"),
    PanelSpec("gpu_util_pct", "GPU util %", (Line(TR, "gpu_util_pct", "util"),), optional=True, group="system"),
    PanelSpec("gpu_mem_gib", "GPU memory GiB",
              (Line(TR, "gpu_mem_used_gib", "used", smooth=False),
               Line(TR, "cuda_reserved_gib", "reserved", smooth=False),
               Line(TR, "cuda_max_alloc_gib", "peak alloc", smooth=False, secondary=True)), optional=True,
              group="system"),
    PanelSpec("gpu_power_w", "GPU power W", (Line(TR, "gpu_power_w", "power"),), optional=True, group="system"),
    PanelSpec("gpu_temp_c", "GPU temp °C", (Line(TR, "gpu_temp_c", "temp", smooth=False),), optional=True,
              group="system"),
    PanelSpec("cpu_pct", "CPU % (100 = 1 core)", (Line(TR, "cpu_pct", "cpu"),), optional=True, group="system"),
    PanelSpec("host_mem_gib", "memory GiB (host)",
              (Line(TR, "rss_gib", "process", smooth=False),
               Line(TR, "host_mem_used_gib", "host used", smooth=False, secondary=True)), optional=True,
              group="system"),
)
PANELS = PANELS + SYSTEM_PANELS
BY_KEY = {p.key: p for p in PANELS}

GROUP_TITLES = {"core": "core", "mhc": "mHC", "system": "system"}


def panel_groups(panels: tuple[PanelSpec, ...] | list[PanelSpec], family: str) -> list[tuple[str, list[PanelSpec]]]:
    """The dashboard's pages: (title, panels) in the order the family reads them.

    Data-driven: every group tag among ``panels`` becomes a page (a "system" group appears when its
    panels are declared and passed in); an mHC run opens on its own page, which leads with loss and
    val_bpb, a GPT run on "core". Panels keep their declaration order inside a group.
    """
    by_group: dict[str, list[PanelSpec]] = {}
    for p in panels:
        by_group.setdefault(p.group, []).append(p)
    fam = registry.find(family)
    first = fam.lead if fam else ()  # what a family's user looks at first leads its first page
    out: list[tuple[str, list[PanelSpec]]] = []
    if first and any(p.key in first for p in panels):
        keys = {p.key: p for p in panels}
        lead = [keys[k] for k in first if k in keys]
        out.append((GROUP_TITLES.get(family, fam.title if fam else family), lead))
        by_group.pop(family, None)
    for group in ("core", *sorted(g for g in by_group if g != "core")):
        if by_group.get(group):
            out.append((GROUP_TITLES.get(group, group), by_group[group]))
    return out


def dashboard_groups(panels: tuple[PanelSpec, ...] | list[PanelSpec], archs: list[str],
                     has: Callable[[str, str], bool]) -> list[tuple[str, list[PanelSpec]]]:
    """The pages for runs of the families ``archs`` (``has(kind, column)``: some run has that data).

    A panel group a family owns (``Family.panels``, e.g. the mHC diagnostics) shows when one of the
    runs is of that family or has data for one of its panels; the pages then lead with that family's
    panels. Groups nobody owns (core, system) always show.
    """
    owners = {g: f.name for f in registry.families() for g in f.panels}
    shown = {g for a in archs if (f := registry.find(a)) for g in f.panels}
    shown |= {p.group for p in panels if p.group in owners
              and any(has(kind, line.column) for line in p.lines for kind in line.kinds)}
    specs = [p for p in panels if p.group not in owners or p.group in shown]
    lead = next((owners[g] for g in owners if g in shown), archs[0] if archs else "")
    return panel_groups(specs, lead)


def verdict(value: float | None, bands: tuple[Band, ...]) -> str:
    """'good', 'bad' or '' for a value against a panel's bands ('bad' wins where they overlap)."""
    if value is None or not math.isfinite(value):
        return ""
    kinds = {b.kind for b in bands if b.contains(value)}
    return "bad" if "bad" in kinds else ("good" if "good" in kinds else "")


# -- the frozen-residual signature ------------------------------------------------------------------

FROZEN_RATIO = 20.0  # specs/mhc.md: |off-diagonal init| / tau beyond this freezes H_res at I


@dataclass(frozen=True)
class Frozen:
    frozen: bool
    text: str


def can_freeze(model: dict[str, Any]) -> bool:
    """Whether runs of this [model] table can show the frozen-residual signature (their family writes
    diagnostics)."""
    fam = registry.find(model.get("arch"))
    return fam is not None and bool(fam.diagnostics)


def frozen_check(model: dict[str, Any], h_res: float | None, gate: float | None, step: float | None
                 ) -> Frozen:
    """H_res_diag_mean == 1.0 and the gate still at its init after training started = FROZEN.

    Looks at the latest diagnostics; ``model`` is the run's [model] table (gate, gate_init, tau, init).
    """
    if not can_freeze(model) or h_res is None or step is None or step <= 0:
        return Frozen(False, "")
    if abs(h_res - 1.0) > 1e-4:
        return Frozen(False, "")
    gate_on = bool(model.get("mhc_gate", False))
    init = float(model.get("mhc_gate_init", 0.01))
    if gate_on:
        if gate is None or abs(gate - init) > max(1e-6, 1e-3 * init):
            return Frozen(False, "")
        why = f"H_res = I and gate stuck at its init {init:g}"
    else:
        why = "H_res = I"
    tau = float(model.get("mhc_tau", 1.0) or 1.0)
    ratio = abs(float(model.get("mhc_h_res_init", 0.0))) / tau
    if ratio > FROZEN_RATIO:
        why += f" (|init|/tau = {ratio:g} > {FROZEN_RATIO:g})"
    return Frozen(True, why)
