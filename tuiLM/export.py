"""Export runs to the dashboards people already use: TensorBoard event files and wide CSV.

``export_tensorboard(run_dir, out_dir)`` writes ``out_dir/<run-id>/``: a scalar ``<kind>/<field>`` for
every numeric field of the train, eval and diag events at its step and wall time, the samples as text
(``sample``), and the hyperparameters of ``preset.toml`` with the final metrics (``hparam/...``) for
TensorBoard's HParams tab. ``export_csv(run_dir, out_dir)`` writes ``out_dir/<run-id>.csv``: one row per
step, one column per numeric field, from the run's columns (``reader.RunReader``: a long run's column
cache makes it fast, and memory stays that of the columns). Both read the run's effective history
(the resume rule of ``reader.effective_events``; TensorBoard's streamed, ``reader.iter_effective``),
so a resumed run exports one curve.

``TensorBoardSink`` is the live mirror: the trainer hands it each event it writes to events.jsonl; a
background thread writes TensorBoard files. ``put`` never blocks (a full queue drops the event and
counts it), and any failure of the sink (tensorboardX missing, a full disk) turns it off and is
reported once; the run itself never notices. TensorBoard records are length- and CRC-framed, so a
trainer killed mid-write leaves a file whose complete records TensorBoard still reads; a resumed run
writes a purge marker so TensorBoard drops the steps the dead attempt wrote after the checkpoint.

Stdlib and numpy at module level; tensorboardX is imported when something is written.
"""

from __future__ import annotations

import csv
import math
import os
import queue
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .errors import UserError
from .events import EventsFileError
from .reader import iter_effective
from .runs import EVENTS, read_preset

SERIES_KINDS = ("train", "eval", "diag")
_SKIP = ("v", "kind", "time", "step")
_NONFINITE = ("nan", "inf", "-inf")


def numeric_fields(ev: dict[str, Any]) -> dict[str, float]:
    """The numeric fields of an event (NaN / inf as written by events._clean included), by name."""
    out: dict[str, float] = {}
    for k, v in ev.items():
        if k in _SKIP or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[k] = float(v)
        elif isinstance(v, str) and v in _NONFINITE:
            out[k] = float(v)
    return out


def require_tensorboardx() -> None:
    """A clear error when tensorboardX is not installed, without importing it (it imports torch)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("tensorboardX")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UserError("TensorBoard export needs tensorboardX: pip install tensorboardX")


def import_tensorboardx() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError("TensorBoard export needs tensorboardX: pip install tensorboardX") from None
    return SummaryWriter


# -- hyperparameters and final metrics -----------------------------------------------------------

def preset_hparams(run_dir: str | Path) -> dict[str, Any]:
    """The frozen preset of a run, flattened to ``section.key`` -> value (empty if unreadable), for a
    study's run its study, trial and seed index (``study.*``: the HParams tab groups seeds by trial),
    and its seed group (``group.key``, ``group.label``: the runs list's groups)."""
    from .runs import read_study_info

    out: dict[str, Any] = {}
    preset = read_preset(run_dir)
    for section, table in preset.items():
        if isinstance(table, dict):
            for key, value in table.items():
                if isinstance(value, (bool, int, float, str)):
                    out[f"{section}.{key}"] = value
    info = read_study_info(run_dir)
    for key in ("study", "trial", "seed_index"):
        if isinstance(info.get(key), (int, str)):
            out["study.name" if key == "study" else f"study.{key}"] = info[key]
    from .groups import membership

    if out:  # its seed group, as the runs list groups it: the HParams tab groups and filters seeds by it
        m = membership(Path(run_dir), preset)  # (the preset read above, not read again)
        out["group.key"], out["group.label"] = m.key, m.label
    return out


class FinalMetrics:
    """Folds events into the figures a run is judged by (the HParams tab's metric columns)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self._tps: list[float] = []
        self._mfu: list[float] = []
        self._train_seen = 0

    def add(self, ev: dict[str, Any]) -> None:
        kind = ev.get("kind")
        f = numeric_fields(ev)
        if kind == "run_start":
            self._train_seen = 0  # a resumed attempt warms up again
        elif kind == "train":
            self._train_seen += 1
            if "loss" in f:
                self.values["final_loss"] = f["loss"]
            if self._train_seen > 1:  # the first window includes warm-up (allocation, compile)
                if "tokens_per_s" in f:
                    self._tps.append(f["tokens_per_s"])
                if "mfu" in f:
                    self._mfu.append(f["mfu"])
        elif kind == "eval":
            for key in ("val_loss", "val_bpb"):
                if key in f:
                    self.values[f"final_{key}"] = f[key]
        elif kind == "run_end":
            for key in ("best_val_bpb", "best_val_loss", "elapsed_s", "artifact_bytes"):
                if key in f:
                    self.values[key] = f[key]

    def metrics(self) -> dict[str, float]:
        out = dict(self.values)
        if self._tps:
            out["tokens_per_s"] = statistics.median(self._tps)
        if self._mfu:
            out["mfu"] = statistics.median(self._mfu)
        return {f"hparam/{k}": v for k, v in out.items() if math.isfinite(v)}


# -- TensorBoard ---------------------------------------------------------------------------------

class TBWriter:
    """Writes events into one tensorboardX SummaryWriter (shared by the export and the live sink)."""

    def __init__(self, writer: Any, hparams: dict[str, Any]) -> None:
        from tensorboardX.proto.summary_pb2 import Summary
        from tensorboardX.summary import scalar

        self._summary, self._value, self._scalar, self._tags = Summary, Summary.Value, scalar, {}
        self.w = writer
        self.hparams = hparams
        self.final = FinalMetrics()

    def write(self, ev: dict[str, Any]) -> None:
        kind = ev.get("kind")
        self.final.add(ev)
        step = ev.get("step")
        if not isinstance(step, int):
            return
        walltime = ev.get("time") if isinstance(ev.get("time"), (int, float)) else None
        if kind in SERIES_KINDS:  # one record with every scalar of the event (add_scalar writes one each: 7x slower)
            values = [self._value(tag=self._tag(f"{kind}/{key}"), simple_value=value)
                      for key, value in numeric_fields(ev).items()]
            if values:
                self.w._get_file_writer().add_summary(self._summary(value=values), step, walltime)
        elif kind == "sample":
            # markdown: a fenced block keeps the sample's own whitespace and symbols literal
            text = f"{ev.get('prompt', '')}{ev.get('text', '')}".replace("```", "'''")
            self.w.add_text("sample", f"```\n{text}\n```", step, walltime=walltime)
        elif kind == "run_end":
            self.write_hparams()

    def _tag(self, name: str) -> str:
        """The tag add_scalar would write for ``name`` (tensorboardX's cleaning), worked out once."""
        if name not in self._tags:
            self._tags[name] = self._scalar(name, 0.0).value[0].tag
        return self._tags[name]

    def write_hparams(self) -> None:
        metrics = self.final.metrics()
        if self.hparams and metrics:
            self.w.add_hparams(self.hparams, metrics, name="hparams")


def tensorboard_target(run_dir: str | Path, out_dir: str | Path) -> Path:
    """``out_dir/<run-id>``; an error when it already holds event files (TensorBoard would mix them)."""
    target = Path(out_dir) / Path(run_dir).name
    if target.is_dir() and any(target.rglob("events.out.tfevents.*")):
        raise UserError(f"{target} already holds TensorBoard files (an earlier export or the live mirror): "
                        f"remove it or export to another folder")
    return target


def export_tensorboard(run_dir: str | Path, out_dir: str | Path,
                       progress: Callable[[int, int], None] | None = None) -> Path:
    """``out_dir/<run-id>/`` from the run's events, streamed (``reader.iter_effective``: memory stays
    flat for any length). ``progress(bytes, total)`` as the events are read."""
    run_dir = Path(run_dir)
    if not (run_dir / EVENTS).is_file():
        raise UserError(f"{run_dir}: no {EVENTS} to export")
    target = tensorboard_target(run_dir, out_dir)
    existed = target.exists()
    SummaryWriter = import_tensorboardx()
    w = SummaryWriter(logdir=str(target), flush_secs=3600, max_queue=1000)
    ended, read = False, 0
    try:
        tb = TBWriter(w, preset_hparams(run_dir))
        for ev in iter_effective(run_dir / EVENTS, progress):
            tb.write(ev)
            ended, read = ended or ev.get("kind") == "run_end", read + 1
        if not read and (run_dir / EVENTS).stat().st_size:
            raise UserError(f"cannot export {run_dir.name}: no line of its {EVENTS} is an event tuiLM can read")
        if not ended:
            tb.write_hparams()  # a run still going (or killed): its metrics so far
    except BaseException as e:  # (EventsFileError is an OSError too; Ctrl-C is a KeyboardInterrupt)
        try:
            w.close()
        except OSError:  # the same full disk, once more
            pass
        import shutil

        if not existed:  # nothing half-written is left to block the next try
            shutil.rmtree(target, ignore_errors=True)
        else:  # a folder that was there (with no event files: tensorboard_target) keeps all but ours
            for f in target.rglob("events.out.tfevents.*"):
                f.unlink(missing_ok=True)
        if not isinstance(e, OSError):
            raise
        from .runs import write_error_message

        why = str(e) if isinstance(e, EventsFileError) else write_error_message(e, target)
        raise UserError(f"cannot export {run_dir.name}: {why}") from None
    w.close()
    return target


# -- CSV -----------------------------------------------------------------------------------------

CSV_BLOCK_ROWS = 20_000  # rows formatted and written at a time: memory stays flat for any run length


def wide_columns(tables: Mapping[str, Any]) -> tuple[list[str], list[np.ndarray]]:
    """(names, columns): one row per step over the train, eval and diag tables of a ``reader.RunReader``
    (the resume rule already applied), cells the reader did not see are ``reader.ABSENT``.

    ``step``, ``tokens`` and ``time`` are shared by every kind (``tokens``: the first kind's that has
    it, ``time``: the earliest); another field that two kinds both carry gets the later kind's name as
    a prefix (``eval.x``) so no value overwrites another. Kinds come in the order of their first row (by
    step, then time: as they appear in the file); where a kind has several rows at one step, the last
    value of each field wins.
    """
    from .reader import ABSENT, absent

    def first(kind: str) -> tuple[float, float]:
        step, t = tables[kind].col("step"), tables[kind].col("time")
        i = int(np.nanargmin(step))
        return float(step[i]), float(t[i]) if t is not None and np.isfinite(t[i]) else math.inf

    kinds = [(*first(k), i, k) for i, k in enumerate(SERIES_KINDS)
             if (st := tables[k].col("step")) is not None and np.isfinite(st).any()]
    steps = {k: tables[k].col("step") for *_, k in kinds}
    rows = np.unique(np.concatenate([s[np.isfinite(s)] for s in steps.values()])) if kinds else np.zeros(0)
    cols: dict[str, np.ndarray] = {"step": rows, "tokens": np.full(rows.size, ABSENT), "time": np.full(rows.size, ABSENT)}
    owner: dict[str, str] = {}
    for *_, kind in sorted(kinds):
        ok = np.isfinite(steps[kind])
        at = np.searchsorted(rows, steps[kind][ok])
        for key, col in tables[kind].cols.items():
            if key in ("step", "v"):
                continue
            values = col[: tables[kind].n][ok]
            have = ~absent(values)
            where, values = at[have], values[have]
            if key == "time":  # this kind's first row at each step; the earliest over the kinds
                where, i = np.unique(where, return_index=True)
                values, now = values[i], cols["time"][where]
                take = absent(now) | (values < now)
                cols["time"][where[take]] = values[take]
                continue
            name = key if key == "tokens" or owner.setdefault(key, kind) == kind else f"{kind}.{key}"
            target = cols.setdefault(name, np.full(rows.size, ABSENT))
            where, i = np.unique(where[::-1], return_index=True)  # this kind's last row at each step
            values = values[::-1][i]
            if key == "tokens":
                keep = absent(target[where])
                where, values = where[keep], values[keep]
            target[where] = values
    return list(cols), list(cols.values())


def _csv_cells(name: str, col: np.ndarray) -> list[str]:
    """A column's cells: '' where absent, whole steps and token counts as integers, else repr."""
    from .reader import absent

    fmt = (lambda x: str(int(x)) if x.is_integer() else repr(x)) if name in ("step", "tokens") else repr
    have = np.flatnonzero(~absent(col))
    if have.size == col.size:
        return [fmt(x) for x in col.tolist()]
    cells = [""] * col.size  # a sparse column (diag, eval) formats only its cells with a value
    for i, x in zip(have.tolist(), col[have].tolist()):
        cells[i] = fmt(x)
    return cells


def export_csv(run_dir: str | Path, out_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """``out_dir/<run-id>.csv`` from the run's columns (read through its column cache where it has one),
    each row led by the run's id and seed (and a study run's study, trial, seed index and settings),
    written block by block to a temp file that replaces the target at the end. ``progress(rows, total)``
    is called after each block."""
    from .files import temp_beside
    from .groups import membership
    from .reader import RunReader
    from .runs import read_study_info

    run_dir = Path(run_dir)
    if not (run_dir / EVENTS).is_file():
        raise UserError(f"{run_dir}: no {EVENTS} to export")
    reader = RunReader(run_dir)
    reader.poll()
    if reader.error:
        raise UserError(f"cannot export {run_dir.name}: {reader.error}")
    if reader.skipped and reader.run_start is None and not any(t.n for t in reader.tables.values()):
        raise UserError(f"cannot export {run_dir.name}: none of the {reader.skipped:,} lines of its {EVENTS} "
                        f"is an event tuiLM can read")
    reader.save_cache()  # a long run read without its cache re-opens from one next time
    names, cols = wide_columns(reader.tables)
    total = cols[0].size
    # a study's run: its study, trial, seed index and sampled settings in every row, so the CSVs of a
    # study concatenate into one table to group by trial (constant columns, first)
    # every run: its id and seed first, so the CSVs of a seed group (or any runs) concatenate into one
    # long table to group by seed, as a W&B export names its runs
    info = read_study_info(run_dir)
    seed = membership(run_dir).seed
    fixed = [("run", run_dir.name), ("seed", "" if seed is None else seed)] + (
        ([("study", info["study"])] + [(k, info[k]) for k in ("trial", "seed_index") if k in info]
         + sorted(info.get("trial_params", {}).items())) if "study" in info else [])
    fixed = [(name, v) for name, v in fixed if name not in names]  # (named like a metric column: not repeated)
    target = Path(out_dir) / f"{run_dir.name}.csv"
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([name for name, _ in fixed] + names)
            for lo in range(0, total, CSV_BLOCK_ROWS):
                rows = zip(*(_csv_cells(n, c[lo: lo + CSV_BLOCK_ROWS]) for n, c in zip(names, cols)))
                lead = [str(v) for _, v in fixed]
                writer.writerows((lead + list(r) for r in rows) if fixed else rows)
                if progress is not None:
                    progress(min(total, lo + CSV_BLOCK_ROWS), total)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# -- the live mirror -------------------------------------------------------------------------------

class TensorBoardSink:
    """Mirror events into ``logdir`` from a background thread; ``put`` never blocks the caller."""

    def __init__(self, logdir: str | Path, hparams: dict[str, Any] | None = None, maxsize: int = 4096,
                 flush_secs: int = 5) -> None:
        self.logdir = Path(logdir)
        self.hparams = hparams or {}
        self.flush_secs = flush_secs
        self.dropped = 0
        self.written = 0
        self.error: str | None = None
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=maxsize)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tuilm-tensorboard", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        if self.error is not None or self._closing.is_set():
            return
        try:
            self._q.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and close the files, waiting at most ``timeout`` seconds."""
        self._closing.set()
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def _run(self) -> None:
        w: Any = None
        try:
            while True:
                ev = self._q.get()
                if ev is None:
                    break
                if w is None:
                    if ev.get("kind") != "run_start":
                        continue  # log lines before the run starts carry nothing to plot
                    from tensorboardX import SummaryWriter

                    # steps after the resumed checkpoint were written by an attempt that died:
                    # TensorBoard drops them from the older files (the resume rule of events.py)
                    purge = int(ev.get("step", 0) or 0) + 1
                    # files are named by the second they are created in, then the suffix: a resume within
                    # the same second needs a later name, or it would overwrite the first attempt's file
                    w = TBWriter(SummaryWriter(logdir=str(self.logdir), purge_step=purge,
                                               flush_secs=self.flush_secs, max_queue=100,
                                               filename_suffix=f".{time.time_ns():020d}"), self.hparams)
                w.write(ev)
                self.written += 1
        except BaseException as e:  # noqa: BLE001 - whatever happens here must stay here
            self.error = f"{type(e).__name__}: {e}"[:300]
            while True:  # let put() callers see an empty queue until they notice the error
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    break
        finally:
            if w is not None:
                try:
                    w.w.close()
                except Exception as e:  # noqa: BLE001
                    self.error = self.error or f"{type(e).__name__}: {e}"[:300]


class MirroredWriter:
    """An EventWriter whose events also go to a sink; the events file stays the record of the run."""

    def __init__(self, writer: Any, sink: TensorBoardSink) -> None:
        self.writer = writer
        self.sink = sink
        self._reported = False

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        ev = self.writer.write(kind, **fields)
        self.sink.put(ev)
        if self.sink.error is not None and not self._reported:
            self._reported = True
            self.writer.write("log", level="warning", step=fields.get("step", 0),
                              message=f"TensorBoard mirror to {self.sink.logdir} stopped: {self.sink.error}")
        return ev

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.sink.close()


__all__ = ["FinalMetrics", "MirroredWriter", "TBWriter", "TensorBoardSink", "export_csv", "export_tensorboard",
           "numeric_fields", "preset_hparams", "wide_columns"]
