"""What the dashboard plots: panels, their series, good/bad bands, and the frozen-residual check.

Bands come from the users' mHC experiment table (shared/seeds) and specs/mhc.md:

    stream_similarity     good < 0.2        bad > 0.4
    gate_value            good 0.3 - 0.7    bad ~1.0 (saturated); stuck at its init = frozen
    sinkhorn_*_err        good < 1e-6       bad > 0.01
    H_res_diag_mean       good 0.4 - 0.8    bad ~1.0 (identity) or ~1/n (uniform averaging)
    val_bpb               good < 1.0        bad > 1.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

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


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    lines: tuple[Line, ...]
    bands: Callable[[dict[str, Any]], tuple[Band, ...]] = field(default=lambda settings: ())
    log_default: bool = False
    mhc: bool = False
    optional: bool = False  # hidden while no run has a non-zero value (memory on a CPU run)
    group: str = "core"  # "core" | "mhc" | "system": the dashboard shows groups as pages


def _bands_val_bpb(_: dict[str, Any]) -> tuple[Band, ...]:
    return (Band(-INF, 1.0, "good"), Band(1.2, INF, "bad"))


def _bands_stream(_: dict[str, Any]) -> tuple[Band, ...]:
    return (Band(-INF, 0.2, "good"), Band(0.4, INF, "bad"))


def _bands_gate(_: dict[str, Any]) -> tuple[Band, ...]:
    return (Band(0.3, 0.7, "good"), Band(0.95, INF, "bad"))


def _bands_hres(settings: dict[str, Any]) -> tuple[Band, ...]:
    n = max(1, int(settings.get("mhc_streams", 4) or 4))
    out = [Band(0.4, 0.8, "good"), Band(0.98, INF, "bad")]
    if n > 1:
        out.append(Band(-INF, 1.0 / n + 0.02, "bad"))
    return tuple(out)


def _bands_sinkhorn(_: dict[str, Any]) -> tuple[Band, ...]:
    return (Band(-INF, 1e-6, "good"), Band(0.01, INF, "bad"))


TR, EV, DG = ("train",), ("eval",), ("diag", "train")

PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("loss", "loss", (Line(TR, "loss", "train"), Line(EV, "val_loss", "val", smooth=False))),
    PanelSpec("val_bpb", "val bpb", (Line(EV, "val_bpb", "val_bpb", smooth=False),), _bands_val_bpb),
    PanelSpec("lr", "learning rate", (Line(TR, "lr", "lr", smooth=False),)),
    PanelSpec("grad_norm", "grad norm", (Line(TR, "grad_norm", "grad_norm"),)),
    PanelSpec("tokens_per_s", "tokens/s", (Line(TR, "tokens_per_s", "tokens/s"),)),
    PanelSpec("mem_gib", "memory GiB", (Line(TR, "mem_gib", "mem", smooth=False),), optional=True),
    PanelSpec("gate_value", "gate value", (Line(DG, "gate_value", "gate", smooth=False),), _bands_gate,
              mhc=True),
    PanelSpec("H_res_diag_mean", "H_res diag mean",
              (Line(DG, "H_res_diag_mean", "used", smooth=False),
               Line(DG, "H_res_diag_mean_raw", "raw", smooth=False, secondary=True)), _bands_hres, mhc=True),
    PanelSpec("stream_similarity", "stream similarity",
              (Line(DG, "stream_similarity", "streams", smooth=False),
               Line(DG, "stream_embed_similarity", "embed", smooth=False, secondary=True)), _bands_stream,
              mhc=True),
    PanelSpec("sinkhorn", "Sinkhorn error",
              (Line(DG, "sinkhorn_col_err", "col", smooth=False),
               Line(DG, "sinkhorn_row_err", "row", smooth=False, secondary=True)), _bands_sinkhorn,
              log_default=True, mhc=True),
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


def frozen_check(model: dict[str, Any], h_res: float | None, gate: float | None, step: float | None
                 ) -> Frozen:
    """H_res_diag_mean == 1.0 and the gate still at its init after training started = FROZEN.

    Looks at the latest diagnostics; ``model`` is the run's [model] table (gate, gate_init, tau, init).
    """
    if model.get("arch") != "mhc" or h_res is None or step is None or step <= 0:
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
