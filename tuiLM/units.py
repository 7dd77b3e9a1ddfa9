"""Parsing and printing sizes and counts. Stdlib only."""

from __future__ import annotations

import re

from .errors import UserError

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
# A bare letter (K, M, G, T) is the binary unit, like GPU memory is sold and nvidia-smi reports it;
# only a spelled-out KB / MB / GB / TB is decimal.
_MULT = {"B": 1, "K": 2**10, "KI": 2**10, "KIB": 2**10, "KB": 10**3, "M": 2**20, "MI": 2**20, "MIB": 2**20,
         "MB": 10**6, "G": 2**30, "GI": 2**30, "GIB": 2**30, "GB": 10**9, "T": 2**40, "TI": 2**40,
         "TIB": 2**40, "TB": 10**12}


def parse_size(text: str, bare: str = "B") -> int:
    """'14GiB' -> bytes. A bare number is in ``bare`` units ("GiB" for a memory budget, like the
    editor's budget field and system.vram_budget_gib); 'G' means GiB, 'GB' means 10^9."""
    m = _SIZE_RE.match(text or "")
    if not m:
        raise UserError(f"cannot read size {text!r}: write e.g. 14 (GiB), 14GiB, 16GB or 8000MiB", exit_code=2)
    unit = (m.group(2) or bare).upper()
    if unit not in _MULT:
        raise UserError(f"unknown size unit in {text!r}: use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB",
                        exit_code=2)
    value = float(m.group(1)) * _MULT[unit]
    if not value < 2**80:  # (inf from 1e400 too) no machine has a yobibyte
        raise UserError(f"size {text!r} is too large to be a memory size", exit_code=2)
    return int(value)


def fmt_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def fmt_count(n: float) -> str:
    """12_345_678 -> '12.35M'."""
    n = float(n)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return f"{n:.0f}"


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_age(seconds: float) -> str:
    """How long ago, in its largest whole unit ("45s", "12m", "3h", "2d"), as ``kubectl get`` shows an AGE."""
    s = max(0, int(seconds))
    for div, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= div:
            return f"{s // div}{unit}"
    return f"{s}s"


def fmt_se(se: float, places: int = 4, tight: bool = False) -> str:
    """A standard error in ``places`` decimals; one too small to show reads "<0.0001", not "0.0000" (which
    says the seeds agreed exactly). ``tight``: without the leading zero (".0411", "<.0001")."""
    text = f"{se:.{places}f}"
    if se > 0 and float(text) == 0:
        text = f"<{10 ** -places:.{places}f}"
    return text.replace("0.", ".", 1) if tight else text


def fmt_flops(flops_per_s: float) -> str:
    """Achieved FLOP/s: TFLOP/s from 1 TFLOP/s on (a GPU), GFLOP/s below (a CPU: 0.002 TFLOP/s read badly,
    and two CPU runs read 15.2 GFLOP/s and 0.11 TFLOP/s side by side)."""
    if flops_per_s >= 999.5e9:  # (999.6 GFLOP/s reads "1 TFLOP/s", not "1e+03 GFLOP/s")
        return f"{flops_per_s / 1e12:.3g} TFLOP/s"
    return f"{flops_per_s / 1e9:.3g} GFLOP/s"


def short_key(key: str, keys: tuple[str, ...] | list[str]) -> str:
    """'lr' for optim.lr unless two sections share the key name (the study list, view and tables)."""
    tail = key.split(".", 1)[-1]
    return tail if sum(1 for k in keys if k.split(".", 1)[-1] == tail) == 1 else key


def short_values(values: list) -> list[str]:
    """A row of settings to read side by side: floats to 4 significant digits (a study's sampled
    0.000204687123 reads 0.0002047), more only where different values would otherwise print the same."""
    for digits in range(4, 18):
        out = [f"{v:.{digits}g}" if isinstance(v, float) else str(v) for v in values]
        if len(set(out)) == len({repr(v) for v in values}):
            return out
    return [repr(v) if isinstance(v, float) else str(v) for v in values]


# -- run ids in a narrow column ----------------------------------------------------------------------

def short_id(run_id: str) -> str:
    """``tiny-20261203-131316`` -> ``tiny-…131316`` (one run's header: the date goes first); an id
    without a time stamp as it is."""
    return fit_id(run_id, len(run_id) - 8) if _STAMP.fullmatch(run_id) else run_id


_STAMP = re.compile(r"(.+)-\d{8}-(\d{6})(-\d+)?")  # runs.new_run_dir's NAME-YYYYmmdd-HHMMSS[-N]
_TRIAL = re.compile(r"(.+)(-t\d+-s\d+)")  # a study's NAME-tNNN-sK


def fit_id(run_id: str, width: int) -> str:
    """A run id in ``width`` cells that still tells runs of one preset apart: the name and the time of
    day (``tiny-…131719``) when the date does not fit; a study trial's name (``lr-t004-s0…``), whose
    trial and seed say more than its time; anything else cut at its end."""
    if len(run_id) <= width:
        return run_id
    m = _STAMP.fullmatch(run_id)
    if m is None:
        return run_id[: max(1, width - 1)] + "…"
    name, tail = m.group(1), m.group(2) + (m.group(3) or "")
    trial = _TRIAL.fullmatch(name)
    if trial:  # the study's name gives way before its trial and seed, from its middle: lr-s…ig-t004-s0
        study, ts = trial.groups()  # (its end tells tiny3-confirm1 from tiny3-confirm2)
        if len(name) + 1 <= width:
            return name + "…"
        room = max(1, width - len(ts) - 1)
        end = min(len(study) // 2, room // 2)
        return study[: room - end] + "…" + (study[-end:] if end else "") + ts
    keep = width - len(tail) - 1
    if keep < 1:  # too narrow for the time of day: cut at the end
        return run_id[: max(1, width - 1)] + "…"
    return name + "-…" + tail if len(name) + 1 <= keep else name[:keep] + "…" + tail
