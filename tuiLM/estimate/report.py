"""``tuilm vram``: the estimate as a Rich report or one JSON object; exact / measured counts beside it.

Exit codes (for scripts): 0 when there is no budget, the preset fits, or ``--fit`` found overrides
that fit; 1 when the preset is over budget and nothing that fits was found (or ``--fit`` was not
asked), with the reason on stderr (and as ``reason`` in ``--json``); the CLI exits 2 when nothing
could be estimated (usage error, missing or invalid preset). ``--exact`` / ``--measure`` problems a user can fix (no models, not enough memory to measure)
are UserErrors.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..units import fmt_bytes, fmt_count
from .core import PARTS, Estimate, estimate

PART_HELP = {
    "weights": "fp32 master",
    "grads": "fp32",
    "optimizer": "AdamW / Muon state",
    "activations": "saved for backward",
    "logits": "loss, logits, grad",
    "mhc": "n-fold streams",
    "ddp": "grad buckets",
    "overhead": "context + slack",
}
MEASURE_HEADROOM = 0.6  # measure on the CPU only when the step needs less than this share of free memory


def _budget(preset: Any, budget_bytes: int | None) -> int | None:
    if budget_bytes is not None:
        return int(budget_bytes)
    gib = preset.system.vram_budget_gib
    return int(gib * 2**30) if gib > 0 else None


def _preset_ref(preset: Any) -> str:
    return str(preset.source) if getattr(preset, "source", None) else "PRESET"


def vram_command(preset: Any, *, budget_bytes: int | None, fit: bool, as_json: bool, exact: bool,
                 measure: bool, world_size: int, console: Console, device: str | None = None,
                 dtype: str | None = None, err_console: Console | None = None) -> int:
    """Print the estimate of ``preset`` (and fit / exact / measure results); return the exit code.

    ``device`` / ``dtype`` override the preset's system section for the estimate ("cpu", "fp32" ...);
    ``--set system.device=cpu`` does the same through the preset.
    """
    est = estimate(preset, world_size=world_size, device=device, dtype=dtype)
    budget = _budget(preset, budget_bytes)
    fits = None if budget is None else est.fits(budget)
    fit_result = None
    if fit and budget is not None and not fits:
        from .fit import fit as fit_fn

        fit_result = fit_fn(preset, budget, world_size=world_size, device=device, dtype=dtype)
    counted = _counted(preset, est, exact, measure)
    code = 0 if (fits is None or fits or (fit_result is not None and fit_result.fits)) else 1
    reason = _over_reason(preset, est, budget, fit, fit_result) if code else None
    if reason and err_console is not None:
        err_console.print(f"[bold red]does not fit[/]: {escape(reason)}", highlight=False, soft_wrap=True)

    if as_json:
        obj = {
            "preset": _preset_ref(preset),
            "estimate": est.to_dict(),
            "total_gib": round(est.total_gib, 4),
            "budget_bytes": budget,
            "fits": fits,
            "fit": None if fit_result is None else {
                "fits": fit_result.fits, "changes": fit_result.changes,
                "command": fit_result.command(_preset_ref(preset)) if fit_result.fits else None,
                "total_bytes": fit_result.estimate.total_bytes, "reason": fit_result.reason,
            },
            "counted": counted,
            "exit_code": code,
            "reason": reason,
        }
        console.file.write(json.dumps(obj, indent=2) + "\n")
        console.file.flush()
        return code

    console.print(render(est, budget=budget, preset_ref=_preset_ref(preset), fit_result=fit_result))
    here = _here_note(preset, est, world_size, dtype) if device is None else None  # (--device: as asked)
    if here:
        console.print(here, style="yellow", highlight=False, markup=False, soft_wrap=True)
    if fit_result is not None and fit_result.fits:  # unwrapped, ready to copy
        console.print(fit_result.command(_preset_ref(preset)), style="bold green", soft_wrap=True,
                      highlight=False, markup=False)
    if counted is not None:
        console.print(render_counted(counted))
    return code


def cpu_here(preset: Any, est: Estimate, world_size: int = 1, dtype: str | None = None) -> Estimate | None:
    """device = auto is estimated as CUDA ("will it fit my GPU"); on a machine without one the run
    would train on the CPU: its estimate there (None when the run would use CUDA or another device)."""
    from ..machine import resolve_device

    if preset.system.device != "auto" or est.device != "cuda" or resolve_device("auto") != "cpu":
        return None
    return estimate(preset, world_size=world_size, device="cpu", dtype=dtype)


def _here_note(preset: Any, est: Estimate, world_size: int, dtype: str | None) -> str | None:
    """``cpu_here`` in words (a laptop user read 557 MiB, 93 % CUDA overhead, for a run that peaks
    near 54 MiB here)."""
    cpu = cpu_here(preset, est, world_size, dtype)
    if cpu is None:
        return None
    return (f"note: no CUDA on this machine: a run here trains on the CPU ({cpu.dtype}), peak "
            f"{fmt_bytes(cpu.total_bytes)} of host RAM (tuilm vram {_preset_ref(preset)} --device cpu)")


# -- exact / measure ------------------------------------------------------------------------------

def _counted(preset: Any, est: Estimate, exact: bool, measure: bool) -> dict[str, Any] | None:
    """Counts of the real model beside the analytic figures for the same device, as plain data:
    ``{"cpu": {dtype, analytic, exact, measured}, "cuda": {dtype, analytic, measured} | None}``.

    Exact always runs CPU kernels (fake tensors); --measure runs on CUDA when the estimate is for CUDA
    and a GPU is present, else one real CPU step.
    """
    if not (exact or measure):
        return None
    try:
        from . import exact as ex
    except ImportError as e:  # pragma: no cover - torch is a dependency
        raise UserError(f"--exact / --measure need torch: {e}") from None
    dtype = "fp32" if est.dtype == "fp32" else "bf16"
    ref = estimate(preset, est.vocab_size, device="cpu", dtype=dtype)
    cpu: dict[str, Any] = {"dtype": dtype, "analytic": _rows(ref), "exact": None, "measured": None}
    out: dict[str, Any] = {"cpu": cpu, "cuda": None}
    try:
        if exact:
            cpu["exact"] = ex.exact(preset, vocab_size=est.vocab_size, dtype=dtype).to_dict()
        if measure:
            if est.device == "cuda" and ex.cuda_available():
                m = ex.measure(preset, vocab_size=est.vocab_size, dtype=est.dtype, device="cuda").to_dict()
                rows = _rows(est)
                rows["total_without_overhead"] = est.total_bytes - est.parts["overhead"]
                out["cuda"] = {"dtype": est.dtype, "analytic": rows, "measured": m}
            else:
                free = ex.cpu_headroom_bytes()
                if ref.total_bytes > MEASURE_HEADROOM * free:
                    raise UserError(
                        f"--measure on the CPU would need about {fmt_bytes(ref.total_bytes)} and "
                        f"{fmt_bytes(free)} is free; use --exact (no memory needed) or shrink the step, "
                        f"e.g. --set train.device_batch_size=1")
                cpu["measured"] = ex.measure(preset, vocab_size=est.vocab_size, dtype=dtype, device="cpu").to_dict()
    except UserError:
        raise
    except Exception as e:  # the model could not be built or run: say so, no traceback
        raise UserError(f"could not run the model for --exact/--measure: {type(e).__name__}: {e}") from None
    return out


def _rows(e: Estimate) -> dict[str, int]:
    return {"weights": e.parts["weights"], "grads": e.parts["grads"], "optimizer": e.parts["optimizer"],
            "saved": e.saved_bytes}


ROW_NAMES = {"weights": "weights", "grads": "grads", "optimizer": "optimizer", "saved": "saved activations"}


def render_counted(c: dict[str, Any]) -> Group:
    """One table per device: analytic beside the counts, and analytic / count of the last column."""
    tables = []
    for device in ("cpu", "cuda"):
        d = c.get(device)
        if not d:
            continue
        cols = [("analytic", d["analytic"])]
        if d.get("exact"):
            cols.append(("exact", d["exact"]))
        if d.get("measured"):
            cols.append(("measured", d["measured"]))
        if len(cols) == 1:
            continue
        table = Table(title=f"Analytic vs counted on {device.upper()} kernels, {d['dtype']}", title_justify="left")
        table.add_column("part")
        for name, _ in cols:
            table.add_column(name, justify="right")
        table.add_column("ratio", justify="right")
        for row, label in ROW_NAMES.items():
            last = cols[-1][1][row]
            table.add_row(label, *[fmt_bytes(col[row]) for _, col in cols],
                          f"{d['analytic'][row] / last:.3f}" if last else "")
        m = d.get("measured") or {}
        if m.get("peak_allocated"):
            total = d["analytic"]["total_without_overhead"]
            table.add_row("peak allocated", fmt_bytes(total), fmt_bytes(m["peak_allocated"]),
                          f"{total / m['peak_allocated']:.3f}")
        kernel = (d.get("exact") or m).get("attention_kernel", "")
        table.caption = ("exact: the model under fake tensors; ratio: analytic / " + cols[-1][0]
                         + (f"; attention: {kernel}" if kernel else ""))
        tables.append(table)
    return Group(*tables)


# -- the report ------------------------------------------------------------------------------------

def render(est: Estimate, *, budget: int | None = None, preset_ref: str = "PRESET", fit_result: Any = None) -> Group:
    head = Text()
    head.append(f"{est.arch.upper()}  ", style="bold")
    head.append(f"{est.params:,}", style="bold cyan")
    head.append(" parameters", style="bold")
    head.append(f"  ({fmt_count(est.params)})\n")
    head.append(f"assumes {est.device.upper()}, {est.dtype}" + (" autocast" if est.dtype != "fp32" else ""))
    head.append(f"  [{est.assumption}]\n" if est.assumption else "\n", style="dim")
    vocab = f"vocab {est.vocab_size:,}" + ("" if est.vocab_exact else " (guess)") + f" from {est.vocab_source}"
    head.append(f"{vocab} · batch {est.batch_size} x {est.seq_len} tokens x {est.world_size} device"
                f"{'s' if est.world_size > 1 else ''} · accumulation {est.grad_accum} -> "
                f"{est.tokens_per_step:,} tokens/step")

    mem = Table(title="Memory per device, peak of one training step", title_justify="left")
    mem.add_column("part")
    mem.add_column("what", style="dim")
    mem.add_column("bytes", justify="right")
    mem.add_column("", justify="right")
    mem.add_column("share", justify="right")
    for part in PARTS:
        v = est.parts[part]
        if v == 0 and part in ("mhc", "ddp", "overhead"):
            continue
        mem.add_row(part, PART_HELP[part], f"{v:,}", fmt_bytes(v), f"{100 * v / est.total_bytes:.1f}%")
    mem.add_section()
    mem.add_row("[bold]total[/]", "", f"[bold]{est.total_bytes:,}[/]", f"[bold]{fmt_bytes(est.total_bytes)}[/]", "100%")

    params = Table(title="Parameters by part", title_justify="left")
    params.add_column("part")
    params.add_column("parameters", justify="right")
    params.add_column("share", justify="right")
    for part, n in est.params_by_part.items():
        params.add_row(part, f"{n:,}", f"{100 * n / est.params:.1f}%")

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("FLOPs / token", f"{est.flops_per_token:,} ({fmt_count(est.flops_per_token)}; 6N + attention, training)")
    facts.add_row("FLOPs / step", fmt_count(est.flops_per_token * est.tokens_per_step))
    facts.add_row("artifact", f"<= {est.artifact_bytes_upper:,} bytes ({fmt_bytes(est.artifact_bytes_upper)}), "
                              f"uncompressed int8 payload, before zlib and code")
    parts: list[Any] = [head, mem, params, facts]
    for note in est.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    if budget is not None:
        parts.append(_verdict(est, budget))
    if fit_result is not None:
        parts.append(_fit_panel(fit_result, preset_ref))
    return Group(*parts)


def _verdict(est: Estimate, budget: int) -> Text:
    spare = budget - est.total_bytes
    if spare >= 0:
        return Text(f"fits: {fmt_bytes(est.total_bytes)} of the {fmt_bytes(budget)} budget "
                    f"({fmt_bytes(spare)} to spare)", style="bold green")
    return Text(f"over budget by {fmt_bytes(-spare)}: needs {fmt_bytes(est.total_bytes)}, budget "
                f"{fmt_bytes(budget)}", style="bold red")


def _over_reason(preset: Any, est: Estimate, budget: int | None, fit: bool, fit_result: Any) -> str:
    assert budget is not None
    text = (f"{_preset_ref(preset)} needs {fmt_bytes(est.total_bytes)} per device, over the "
            f"{fmt_bytes(budget)} budget by {fmt_bytes(est.total_bytes - budget)}")
    if fit_result is not None:
        return text + f"; --fit found nothing that fits: {fit_result.reason}"
    return text + ("" if fit else "; --fit looks for overrides that fit")


def _fit_panel(r: Any, preset_ref: str) -> Panel:
    if not r.fits:
        return Panel(Text(f"nothing found that fits: {r.reason}", style="red"), title="fit", title_align="left")
    body = Text()
    body.append("overrides: ", style="bold")
    body.append(" ".join(f"--set {c}" for c in r.changes) + "\n")
    body.append(f"estimate with them: {fmt_bytes(r.estimate.total_bytes)} "
                f"(batch {r.estimate.batch_size} x {r.estimate.seq_len}, accumulation {r.estimate.grad_accum}, "
                f"{r.estimate.tokens_per_step:,} tokens/step)")
    return Panel(body, title="fit", title_align="left")
