"""Property-based fuzzing of events.jsonl: wrong-typed fields, deep nesting, non-finite and odd
strings, garbage bytes and torn lines go through every reader of a run. None may raise; each skips
(and counts) what it cannot use and keeps reading the rest."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tuiLM import headless, report
from tuiLM.events import sanitize
from tuiLM.reader import EventTail, RunReader, effective_events, read_events, summarize
from tuiLM.runs import EVENTS
from tuiLM.tui.rundata import RunData

KINDS = ["run_start", "train", "eval", "diag", "sample", "checkpoint", "log", "run_end", "pruned", ""]
FIELDS = ["step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "dt_ms", "val_loss", "val_bpb", "time",
          "max_steps", "pid", "status", "reason", "arch", "preset_name", "prompt", "text", "level", "message",
          "params", "world_size", "device", "estimate", "corpus", "artifact_bytes", "elapsed_s",
          "best_val_bpb", "mem_gib", "path", "source", "v", "kind", "mhc_amax"]
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "7", "", "completed", "failed", "1e999",
                              "[/]", "[bold]"])
           | st.text(max_size=6))
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.sampled_from(FIELDS), scalars, max_size=2)
# an event: a kind (or something else in its place) and a few fields, each of any type
events = st.builds(lambda kind, rest: {"kind": kind, **rest}, st.sampled_from(KINDS) | values,
                   st.dictionaries(st.sampled_from(FIELDS), values, max_size=5))


def _nested(depth: int, key: str | None) -> str:
    inner = "[" * depth + "]" * depth
    return inner if key is None else json.dumps({"kind": "train", "step": 1})[:-1] + f',"{key}":{inner}}}'


lines = st.one_of(
    events.map(lambda e: json.dumps(e).encode()),
    events.map(lambda e: json.dumps(e).encode().replace(b"0", b"NaN", 1)),  # a non-JSON literal in a line
    st.tuples(st.integers(1, 3000), st.sampled_from([None, "x", "estimate", "step"])).map(
        lambda t: _nested(*t).encode()),
    st.binary(max_size=40),
    st.sampled_from([b'{"kind":"train","step":"7","loss":1}', b'{"kind":"run_end","step":{},"status":"failed"}',
                     b'{"kind":"eval","step":3,"val_bpb":"bad","val_loss":1}', b'[]', b'null', b'"x"',
                     b'{"kind":"run_start","step":-1,"max_steps":1e308,"pid":1.5}',
                     b'{"kind":"train","step":1e400}', b'\xff\xfe{"kind":"log"}']),
)
files = st.tuples(st.lists(lines, min_size=1, max_size=5), st.binary(max_size=12)).map(
    lambda t: b"\n".join(t[0]) + b"\n" + t[1])


class _MemTail(EventTail):
    """EventTail over bytes in memory: the same line splitting, decoding and counting, no file."""

    def __init__(self, data: bytes) -> None:
        super().__init__("<memory>")
        self._data = data

    def read_bytes(self, max_bytes: int | None = None) -> bytes:
        data, self._data = self._data, b""
        self.offset += len(data)
        return data

    def size(self) -> int:
        return self.offset + len(self._data)


class _MarkupConsole:
    """What headless._fold prints to, minus the layout: Rich markup is parsed (the step that can raise
    on text from an event), nothing is rendered."""

    def print(self, *objects: object, markup: bool = True, **kw: object) -> None:
        from rich.markup import render

        for o in objects:
            if markup and isinstance(o, str):
                render(o)


def _fold_everything(data: bytes, run_dir: Path) -> None:
    """Every reader's decoding and folding, in memory (the fast path: 10,000 examples)."""
    reader = RunReader(run_dir, cache=False)  # runs list / show, the app, studies: one reader
    reader.tail = _MemTail(data)
    reader.poll()
    s = reader.summary()
    assert isinstance(s.step, int) and isinstance(s.state, str)
    state = headless.watch_state()
    for ev in _MemTail(data).poll():  # the headless watcher (tuilm run --headless)
        headless._fold(ev, state, _MarkupConsole())
    assert isinstance(state["step"], int)
    rd = RunData(run_dir)  # the dashboard: a snapshot of that reader's state
    rd.reader = reader
    rd.poll()
    snap = rd.snapshot()
    _ = (snap.state, snap.max_steps, snap.arch, snap.elapsed_s(), snap.recent_rate(), list(snap.samples),
         list(snap.logs))


def _read_everything(run_dir: Path) -> None:
    """Every reader of events.jsonl on a real file, the way the CLI, the headless watcher and the app
    use them."""
    evs = read_events(run_dir / EVENTS)
    assert all(sanitize(e) is not None for e in evs)
    effective_events(evs)
    s = summarize(run_dir)
    assert isinstance(s.step, int) and isinstance(s.state, str)
    rd = RunData(run_dir)
    rd.poll()
    snap = rd.snapshot()
    _ = (snap.state, snap.max_steps, snap.arch, snap.elapsed_s(), snap.recent_rate(), list(snap.samples),
         list(snap.logs))
    for kind in ("train", "eval"):
        snap.xy(kind, "loss")
    state = headless.watch_state()
    out = Console(file=io.StringIO(), width=120)
    for ev in EventTail(run_dir / EVENTS).poll():
        headless._fold(ev, state, out)
    out2 = Console(file=io.StringIO(), width=160)
    report.print_runs_list(out2, root=run_dir.parent)
    report.print_run(run_dir, out2)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=files)
def test_fuzzed_events_never_break_a_reader(tmp_path_factory, data):
    """10,000 examples through the decoding and folding of every reader (in memory where it can).
    About 10 ms of CPU an example on the 2-core VM, most of it hypothesis drawing the example (the
    readers take ~2.5 ms): ~1.5 min, kept because 10,000 is the issue's bar."""
    run_dir = tmp_path_factory.getbasetemp() / "fuzz-fast" / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    _fold_everything(data, run_dir)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=files)
def test_fuzzed_events_files_never_break_a_reader(tmp_path_factory, data):
    """The same on real files, with the reports rendered (fewer examples: file reads, a RunData and
    Rich tables cost milliseconds each, and what they render is what the fast path above folds)."""
    run_dir = tmp_path_factory.getbasetemp() / "fuzz-runs" / "fuzz-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / EVENTS).write_bytes(data)
    _read_everything(run_dir)


def test_the_issue_s_lines_are_skipped_and_counted(tmp_path):
    good = {"kind": "train", "step": 2, "tokens": 64, "loss": 1.5, "lr": 0.1, "grad_norm": 1.0, "tokens_per_s": 1.0,
            "dt_ms": 1.0, "time": 1.0, "v": 1}
    bad = [b'{"kind":"train","step":"7","loss":1}', b'{"kind":"run_end","step":{},"status":"failed"}',
           b"[" * 100_000 + b"]" * 100_000, b'{"kind":"eval","step":1,"val_bpb":"bpb","val_loss":1}']
    (tmp_path / EVENTS).write_bytes(b"\n".join(bad + [json.dumps(good).encode()]) + b"\n")
    tail = EventTail(tmp_path / EVENTS)
    assert [e["step"] for e in tail.poll()] == [2] and tail.skipped == 4
    s = summarize(tmp_path)
    assert (s.step, s.last_loss) == (2, 1.5)
    rd = RunData(tmp_path)
    rd.poll()
    assert list(rd.snapshot().column("train", "step")) == [2.0] and rd.snapshot().skipped == 4
