"""Export round trips: CSV read back with csv, TensorBoard read back with tensorboard's own
EventAccumulator; the live sink's purge on resume, its non-blocking queue and a torn file. No training."""

from __future__ import annotations

import csv
import io
import math
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tuiLM.config.write import atomic_write_text, dumps_resolved
from tuiLM.errors import UserError
from tuiLM.events import EventWriter
from tuiLM.reader import effective_events, read_events
from tuiLM.export import TensorBoardSink, export_csv, export_tensorboard
from tuiLM.runs import EVENTS, PRESET

from .conftest import ROOT, TINY_GPT, make_preset
from .fixtures.reference_export import reference_csv

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def accumulate(path: Path):
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for s in acc.Scalars(tag):
        assert s.step not in out, f"{tag}: step {s.step} twice"
        out[s.step] = s.value
    return out


def same(a: float, b: float) -> bool:
    """float32 (TensorBoard) against float64 (events.jsonl); NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-6, abs=1e-30)


def fake_run(root: Path, name: str = "fake-1") -> Path:
    """A run directory with every event kind, a NaN, a resume (steps 5-6 of the first attempt superseded)."""
    run_dir = root / name
    (run_dir / "checkpoints").mkdir(parents=True)
    preset = make_preset({**TINY_GPT, "run.name": "fake", "optim.lr": 0.002})
    atomic_write_text(run_dir / PRESET, dumps_resolved(preset))
    with EventWriter(run_dir / EVENTS) as w:
        w.write("run_start", run_id=name, versions={}, device="cpu", params=100, world_size=1, max_steps=8,
                tokens_per_step=64, corpus={}, pid=1, step=0, flops_per_token=600)
        for s in range(1, 7):
            w.write("train", step=s, tokens=64 * s, loss=5.0 - 0.1 * s, lr=1e-3, grad_norm=float("nan") if s == 3
                    else 1.0 + s, tokens_per_s=1000.0 + s, dt_ms=10.0, flops_per_s=600 * (1000.0 + s),
                    rss_gib=0.25, cpu_pct=99.5)
            if s % 2 == 0:
                w.write("diag", step=s, tokens=64 * s, gate_value=0.1 * s, stream_similarity=0.05)
        w.write("eval", step=4, tokens=256, val_loss=4.5, val_bpb=1.3, val_tokens=100, val_bytes=100)
        w.write("sample", step=4, prompt="The", text=" cat ```sat``` on\nthe mat")
        w.write("log", level="info", message="resumed")
        w.write("run_start", run_id=name, versions={}, device="cpu", params=100, world_size=1, max_steps=8,
                tokens_per_step=64, corpus={}, pid=2, step=4, resumed=True, flops_per_token=600)  # as the trainer does
        for s in range(5, 9):
            w.write("train", step=s, tokens=64 * s, loss=3.0 - 0.1 * s, lr=5e-4, grad_norm=2.0, tokens_per_s=2000.0 + s,
                    dt_ms=9.0, flops_per_s=600 * (2000.0 + s), rss_gib=0.5, cpu_pct=101.0)
        w.write("eval", step=8, tokens=512, val_loss=2.5, val_bpb=0.9, val_tokens=100, val_bytes=100)
        w.write("run_end", status="completed", step=8, reason="", tokens=512, best_val_bpb=0.9, best_val_loss=2.5,
                elapsed_s=12.5, artifact_bytes=4321)
    return run_dir


def expected(run_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from the effective events, numeric fields only."""
    out: dict[str, dict[int, float]] = {}
    for ev in effective_events(read_events(run_dir / EVENTS)):
        if ev["kind"] not in ("train", "eval", "diag"):
            continue
        for k, v in ev.items():
            if k in ("v", "kind", "time", "step") or isinstance(v, bool):
                continue
            if isinstance(v, (int, float)) or v in ("nan", "inf", "-inf"):
                tag = f"{ev['kind']}/{k}"
                assert ev["step"] not in out.setdefault(tag, {})
                out[tag][ev["step"]] = float(v)
    return out


def test_csv_round_trip_one_row_per_step_with_the_resume_rule(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    path = export_csv(run_dir, tmp_path / "csv")
    assert path == tmp_path / "csv" / "fake-1.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    want = expected(run_dir)
    for tag, by_step in want.items():
        column = tag.split("/", 1)[1]
        for step, value in by_step.items():
            cell = rows[step - 1][column]
            assert same(float(cell), value), (tag, step, cell, value)
    # steps 5 and 6 come from the resumed attempt, not the superseded one
    assert float(rows[4]["loss"]) == pytest.approx(2.5) and float(rows[5]["rss_gib"]) == 0.5
    assert rows[2]["grad_norm"] == "nan"
    assert rows[0]["val_bpb"] == "" and rows[3]["val_bpb"] == "1.3"  # eval only at steps 4 and 8
    assert rows[1]["gate_value"] != "" and rows[4]["gate_value"] == ""  # diag dropped after the resume
    assert rows[3]["tokens"] == "256"


def test_a_study_runs_csv_names_its_study_trial_seed_and_settings_in_every_row(tmp_path):
    """A study's CSVs could not be joined into one table by trial: they had no study columns."""
    import json

    run_dir = fake_run(tmp_path / "runs")
    (run_dir / "study.json").write_text(json.dumps({"study": "lr", "trial": 4, "seed_index": 1,
                                                    "params": {"optim.lr": 0.003}}))
    with open(export_csv(run_dir, tmp_path / "csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["run", "seed", "study", "trial", "seed_index", "optim.lr"]
    assert all((r["study"], r["trial"], r["seed_index"], r["optim.lr"]) == ("lr", "4", "1", "0.003") for r in rows)
    assert [int(r["step"]) for r in rows] == list(range(1, 9))  # the metrics as for any run


def test_csv_from_columns_equals_the_per_event_export(tmp_path):
    """The columnar export writes the very text the old per-event one did (tests/fixtures/reference_csv)."""
    run_dir = fake_run(tmp_path / "runs")
    assert export_csv(run_dir, tmp_path / "csv").read_text() == reference_csv(run_dir)


def random_run(root: Path, seed: int) -> Path:
    """Fields that come and go, NaN / inf, a field two kinds carry, two diag rows at one step, an eval at
    a step with no train row, lines the fast path takes and lines it cannot, and resumes."""
    rng = random.Random(seed)
    run_dir = root / f"r{seed}"
    run_dir.mkdir(parents=True)
    with EventWriter(run_dir / EVENTS) as w:
        step = 0
        for attempt in range(3):
            w.write("run_start", run_id="r", versions={}, device="cpu", params=1, world_size=1, max_steps=99,
                    tokens_per_step=8, corpus={}, pid=1, step=step)
            first = attempt == 0
            for _ in range(rng.randint(20, 60)):
                step += 1
                fields = {"loss": rng.choice([rng.random(), float("nan"), float("inf")]), "lr": 1e-3,
                          "x": rng.random()}
                if first or rng.random() < 0.3:
                    fields["extra"] = rng.random()
                w.write("train", step=step, tokens=8 * step, **fields)
                if first or step % 11 == 0:  # eval before diag, as the trainer writes them
                    at = step + (step % 3 == 0)
                    w.write("eval", step=at, tokens=8 * at, val_loss=rng.random(), val_bpb=rng.random())
                if first or step % 7 == 0:
                    for _ in range(1 if step % 2 else 2):
                        w.write("diag", step=step, gate_value=rng.random(), x=rng.random())
                first = False
            step = max(1, step - rng.randint(0, 10))  # the next attempt resumes from an earlier checkpoint
    return run_dir


@pytest.mark.parametrize("seed", range(5))
def test_csv_equals_the_per_event_export_on_random_runs_with_and_without_the_cache(tmp_path, seed, monkeypatch):
    from tuiLM import reader

    run_dir = random_run(tmp_path, seed)
    want = reference_csv(run_dir)
    assert export_csv(run_dir, tmp_path / "a").read_text() == want
    monkeypatch.setattr(reader, "CACHE_MIN_BYTES", 0)
    r = reader.RunReader(run_dir)
    r.poll()
    assert r.save_cache(min_new=1)
    loaded = []
    real = reader.RunReader._load_cache
    monkeypatch.setattr(reader.RunReader, "_load_cache", lambda self: loaded.append(real(self)) or loaded[-1])
    assert export_csv(run_dir, tmp_path / "b").read_text() == want  # absent cells survive the cache
    assert loaded == [True]


@pytest.mark.parametrize("seed", range(4))
def test_the_streamed_resume_rule_equals_the_list_one(tmp_path, seed):
    from tuiLM.reader import iter_effective

    run_dir = random_run(tmp_path, seed)
    with open(run_dir / EVENTS, "a") as fh:  # a run_end, blank and bad lines, then one more attempt
        fh.write('{"v":1,"kind":"run_end","time":1,"status":"failed","step":3,"reason":""}\n\nnot json\n[1]\n'
                 '{"v":1,"kind":"run_start","time":2,"step":2}\n{"v":1,"kind":"train","time":3,"step":3}\n{"v":1,"ki')
    want = effective_events(read_events(run_dir / EVENTS))
    seen: list[tuple[int, int]] = []
    assert list(iter_effective(run_dir / EVENTS, progress=lambda a, b: seen.append((a, b)))) == want
    assert seen and seen[-1][0] == seen[-1][1] == (run_dir / EVENTS).stat().st_size - len('{"v":1,"ki')
    assert [e["step"] for e in want if e["kind"] == "train"][-2:] == [2, 3]


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_tensorboard_export_reads_back_as_the_per_scalar_export_did(tmp_path, seed):
    """One record per event with all its scalars reads back in TensorBoard exactly as one add_scalar per
    field did: the same tags (a field name TensorBoard cannot take cleaned the same way), steps, wall
    times and values; the same texts and hparams."""
    from tests.fixtures.reference_export import reference_tensorboard

    run_dir = fake_run(tmp_path / "runs") if seed is None else random_run(tmp_path, seed)
    with EventWriter(run_dir / EVENTS) as w:
        w.write("diag", step=1, **{"odd name (x)": 1.5})
    new, old = accumulate(export_tensorboard(run_dir, tmp_path / "new")), accumulate(reference_tensorboard(run_dir, tmp_path / "old"))
    assert new.Tags()["scalars"] and sorted(new.Tags()["scalars"]) == sorted(old.Tags()["scalars"])
    assert "diag/odd_name__x_" in new.Tags()["scalars"]
    def points(acc, tag):
        return [(s.step, s.wall_time, "nan" if math.isnan(s.value) else s.value) for s in acc.Scalars(tag)]

    for tag in old.Tags()["scalars"]:
        assert points(new, tag) == points(old, tag), tag
    assert sorted(new.Tags()["tensors"]) == sorted(old.Tags()["tensors"])
    for tag in old.Tags()["tensors"]:
        assert [(t.step, t.tensor_proto.SerializeToString()) for t in new.Tensors(tag)] == \
            [(t.step, t.tensor_proto.SerializeToString()) for t in old.Tensors(tag)], tag


def test_csv_tells_a_written_nan_from_a_field_the_event_did_not_carry(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    with EventWriter(run_dir / EVENTS) as w:
        w.write("train", step=1, tokens=8, loss=float("nan"), lr=1.0, extra=2.0)
        w.write("train", step=2, tokens=16, loss=1.5, lr=1.0)
        w.write("eval", step=2, tokens=16, val_loss=float("nan"), loss=3.0)
    with open(export_csv(run_dir, tmp_path / "out"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["run", "seed", "step", "tokens", "time", "loss", "lr", "extra", "val_loss", "eval.loss"]
    assert {(r["run"], r["seed"]) for r in rows} == {("r", "")}  # (no preset: no seed)
    assert [r["loss"] for r in rows] == ["nan", "1.5"] and [r["extra"] for r in rows] == ["2.0", ""]
    assert [r["val_loss"] for r in rows] == ["", "nan"] and [r["eval.loss"] for r in rows] == ["", "3.0"]


def test_csv_export_reports_progress_by_block(tmp_path, monkeypatch):
    from tuiLM import export

    run_dir = random_run(tmp_path, 0)
    monkeypatch.setattr(export, "CSV_BLOCK_ROWS", 7)
    seen: list[tuple[int, int]] = []
    path = export_csv(run_dir, tmp_path / "out", progress=lambda done, total: seen.append((done, total)))
    total = len(path.read_text().splitlines()) - 1
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted({min(total, d) for d in range(7, total + 7, 7)})
    assert path.read_text() == reference_csv(run_dir)  # blocks join without a seam


def test_tensorboard_round_trip_scalars_text_and_hparams(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = fake_run(tmp_path / "runs")
    target = export_tensorboard(run_dir, tmp_path / "tb")
    assert target == tmp_path / "tb" / "fake-1"
    acc = accumulate(target)
    want = expected(run_dir)
    assert set(acc.Tags()["scalars"]) == set(want)
    for tag, by_step in want.items():
        got = scalars(acc, tag)
        assert sorted(got) == sorted(by_step), tag
        for step, value in by_step.items():
            assert same(got[step], value), (tag, step, got[step], value)
    # the event's wall time rides along
    first = read_events(run_dir / EVENTS)[1]
    assert acc.Scalars("train/loss")[0].wall_time == pytest.approx(first["time"], abs=1e-3)
    # samples as text
    (tag,) = [t for t in acc.Tags()["tensors"] if t.startswith("sample")]
    texts = acc.Tensors(tag)
    assert [t.step for t in texts] == [4]
    text = texts[0].tensor_proto.string_val[0].decode()
    assert "The cat '''sat''' on\nthe mat" in text
    # hparams with the final metrics (their own session folder, as tensorboardX writes them)
    hp = accumulate(target / "hparams")
    content = hp.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = session.session_start_info.hparams
    assert values["optim.lr"].number_value == pytest.approx(0.002)
    assert values["model.arch"].string_value == "gpt"
    assert values["system.compile"].bool_value is False
    finals = {tag: scalars(hp, tag) for tag in hp.Tags()["scalars"]}
    final = {tag: next(iter(v.values())) for tag, v in finals.items()}
    assert final["hparam/best_val_bpb"] == pytest.approx(0.9)
    assert final["hparam/final_loss"] == pytest.approx(3.0 - 0.8)
    # median over both attempts' windows, each attempt's first (warm-up) window left out:
    # 1002, 1003, 1004 (steps 2-4) and 2006, 2007, 2008 (steps 6-8)
    assert final["hparam/tokens_per_s"] == pytest.approx((1004 + 2006) / 2)
    assert final["hparam/artifact_bytes"] == 4321
    assert "study.name" not in values  # a plain run: no study keys


def test_a_study_runs_tensorboard_hparams_name_its_study_trial_and_seed(tmp_path):
    """The HParams tab could not group a study's seeds by trial: the hparams had run.seed only."""
    import json

    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = fake_run(tmp_path / "runs")
    (run_dir / "study.json").write_text(json.dumps({"study": "lr", "trial": 4, "seed_index": 1, "params": {}}))
    target = export_tensorboard(run_dir, tmp_path / "tb")
    content = accumulate(target / "hparams").PluginTagToContent("hparams")
    values = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]) \
        .session_start_info.hparams
    assert values["study.name"].string_value == "lr"
    assert (values["study.trial"].number_value, values["study.seed_index"].number_value) == (4, 1)


def test_tensorboard_hparams_name_the_seed_group_so_the_hparams_tab_groups_seeds(tmp_path):
    """A plain seed group had no tag in TensorBoard: its seeds could not be grouped in the HParams tab."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    from .fixtures.fixture_runs import write_run

    runs = [write_run(tmp_path / "runs", f"s{i}", "gpt", seed=i, run_seed=i) for i in range(2)]
    runs.append(write_run(tmp_path / "runs", "hot", "gpt", seed=2, run_seed=0, lr=6e-3))
    keys = []
    for run in runs:
        content = accumulate(export_tensorboard(run, tmp_path / "tb") / "hparams").PluginTagToContent("hparams")
        values = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]) \
            .session_start_info.hparams
        keys.append((values["group.key"].string_value, values["group.label"].string_value))
    assert keys[0] == keys[1] and keys[0][0].startswith("config:") and keys[2][0] != keys[0][0], keys


def test_tensorboard_export_refuses_to_mix_into_an_earlier_export(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    export_tensorboard(run_dir, tmp_path / "tb")
    from tuiLM.errors import UserError

    with pytest.raises(UserError, match="already holds TensorBoard files"):
        export_tensorboard(run_dir, tmp_path / "tb")


def test_an_interrupted_tensorboard_export_leaves_nothing_that_blocks_the_next(tmp_path):
    """Ctrl-C mid-export left its event files, and the retry refused the folder ("already holds
    TensorBoard files"). Anything that ends an export early now removes what it wrote."""
    run_dir = fake_run(tmp_path / "runs")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_tensorboard(run_dir, tmp_path / "tb", progress=interrupt)
    assert not (tmp_path / "tb" / run_dir.name).exists()
    (tmp_path / "tb" / run_dir.name).mkdir(parents=True)  # a folder made beforehand: it stays, our files go
    with pytest.raises(KeyboardInterrupt):
        export_tensorboard(run_dir, tmp_path / "tb", progress=interrupt)
    assert (tmp_path / "tb" / run_dir.name).is_dir()
    assert not list((tmp_path / "tb" / run_dir.name).rglob("events.out.tfevents.*"))
    target = export_tensorboard(run_dir, tmp_path / "tb")
    assert list(target.glob("events.out.tfevents.*"))


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TUILM_RUNS_DIR": str(cwd / "runs")})


def test_cli_export_both_formats_and_its_errors(tmp_path):
    fake_run(tmp_path / "runs", "a-1")
    fake_run(tmp_path / "runs", "b-1")
    r = cli("export", "a-1", "b-1", "--to", "csv", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "a-1.csv").is_file() and (tmp_path / "out" / "b-1.csv").is_file()
    r = cli("export", "a-1", "--to", "tensorboard", "tb", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "tensorboard --logdir" in r.stdout
    r = cli("export", "a-1", "--to", "parquet", "x", cwd=tmp_path)
    assert r.returncode == 2 and "tensorboard or csv" in r.stderr and "Traceback" not in r.stderr
    r = cli("export", "nope", "--to", "csv", "x", cwd=tmp_path)
    assert r.returncode == 1 and "no run 'nope'" in r.stderr and "Traceback" not in r.stderr
    blocked = "import sys; sys.modules['tensorboardX'] = None; from tuiLM.cli import main; main(sys.argv[1:])"
    for argv in (["export", "a-1", "--to", "tensorboard", "tb2"], ["run", "quickstart", "--headless", "--tensorboard", "tb"]):
        r = subprocess.run([sys.executable, "-c", blocked, *argv], capture_output=True, text=True, cwd=tmp_path,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TUILM_RUNS_DIR": str(tmp_path / "runs")})
        assert r.returncode == 1 and "pip install tensorboardX" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "tb2").exists() and len(list((tmp_path / "runs").iterdir())) == 2  # nothing started
    (tmp_path / "afile").write_text("")
    r = cli("export", "a-1", "--to", "csv", "afile", cwd=tmp_path)
    assert r.returncode == 2 and "not a folder" in r.stderr


# -- the live sink ---------------------------------------------------------------------------------

def _start(step: int) -> dict:
    return {"v": 1, "kind": "run_start", "time": 1.0, "step": step}


def _train(step: int, loss: float) -> dict:
    return {"v": 1, "kind": "train", "time": 1.0 + step, "step": step, "loss": loss}


def test_live_sink_purges_the_dead_attempts_steps_on_resume(tmp_path):
    logdir = tmp_path / "tb" / "run-1"
    first = TensorBoardSink(logdir)
    first.put(_start(0))
    for s in range(1, 11):
        first.put(_train(s, 10.0 + s))
    first.close()
    second = TensorBoardSink(logdir)  # resumed from the checkpoint at step 5
    second.put(_start(5))
    for s in range(6, 9):
        second.put(_train(s, 20.0 + s))
    second.close()
    assert first.error is None and second.error is None and first.dropped == second.dropped == 0
    got = scalars(accumulate(logdir), "train/loss")
    assert got == {1: 11.0, 2: 12.0, 3: 13.0, 4: 14.0, 5: 15.0, 6: 26.0, 7: 27.0, 8: 28.0}


def test_live_sink_drops_rather_than_blocks_when_its_writer_is_stuck(tmp_path, monkeypatch):
    import tuiLM.export as export

    gate = threading.Event()
    real_write = export.TBWriter.write
    monkeypatch.setattr(export.TBWriter, "write", lambda self, ev: (gate.wait(30), real_write(self, ev)))
    sink = TensorBoardSink(tmp_path / "tb" / "run-1", maxsize=4)
    sink.put(_start(0))
    for s in range(1, 1001):
        sink.put(_train(s, 1.0))  # the writer thread is stuck on the first event: these must not wait
    assert sink.dropped >= 1000 - 5
    gate.set()
    sink.close(timeout=30)
    assert sink.error is None and sink.written == 1001 - sink.dropped


def test_live_sink_failure_stays_in_the_sink(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    sink = TensorBoardSink(blocker / "run-1", maxsize=4)  # cannot create its folder: the thread fails
    sink.put(_start(0))
    sink._thread.join(30)
    for s in range(1, 100):
        sink.put(_train(s, 1.0))  # after the failure: ignored, never raises
    sink.close(timeout=5)
    assert sink.error is not None and not sink._thread.is_alive()


def test_a_torn_last_record_still_reads(tmp_path):
    logdir = tmp_path / "tb" / "run-1"
    sink = TensorBoardSink(logdir)
    sink.put(_start(0))
    for s in range(1, 21):
        sink.put(_train(s, float(s)))
    sink.close()
    (path,) = logdir.glob("events.out.tfevents.*")
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # a SIGKILL in the middle of the last record
    got = scalars(accumulate(logdir), "train/loss")
    assert got == {s: float(s) for s in range(1, 20)}


def test_runs_show_system_figures(tmp_path):
    from tuiLM.report import system_figures

    run_dir = fake_run(tmp_path / "runs")
    rows = dict(system_figures(run_dir))
    # effective train events: steps 1-4 (first attempt) and 5-8 (resumed); the run's first window is left
    # out: 1002, 1003, 1004, 2005, 2006, 2007, 2008 tokens/s x 600 FLOPs/token
    assert rows["model FLOP/s"] == f"{600 * 2005 / 1e9:.3g} GFLOP/s"
    assert rows["process RSS (max)"] == "0.50 GiB"
    assert rows["FLOPs / token"].startswith("600 ")
    assert "MFU" not in rows and "GPU utilisation" not in rows  # not measured: not shown
    with EventWriter(run_dir / EVENTS) as w:
        for s in (9, 10, 11):
            w.write("train", step=s, tokens=64 * s, loss=1.0, lr=1e-3, grad_norm=1.0, tokens_per_s=1.0, dt_ms=1.0,
                    mfu=0.1 * s - 0.5, gpu_util_pct=90.0 + s, gpu_mem_used_gib=10.0 + s, gpu_mem_total_gib=80.0,
                    gpu_temp_c=60.0 + s)
    rows = dict(system_figures(run_dir))
    assert rows["MFU"] == "50.0%" and rows["GPU utilisation"] == "100 %"
    assert rows["GPU memory (max)"] == "21.00 GiB of 80.00 GiB" and rows["GPU temperature (max)"] == "71 °C"


def _shown(run_dir: Path) -> str:
    from rich.console import Console

    from tuiLM.report import print_run

    out = Console(file=io.StringIO(), width=120, color_system=None)
    print_run(run_dir, out)
    return out.file.getvalue()


def test_runs_show_reads_the_resumed_history_once_through_the_reader(tmp_path):
    run_dir = fake_run(tmp_path / "runs")
    with EventWriter(run_dir / EVENTS) as w:  # a sample the resume below supersedes
        w.write("sample", step=7, prompt="Lost", text=" attempt")
        w.write("run_start", run_id="fake-1", versions={}, device="cpu", params=100, world_size=1, max_steps=8,
                tokens_per_step=64, corpus={}, pid=3, step=6)
        w.write("train", step=7, tokens=448, loss=0.5, lr=1e-4, grad_norm=1.0, tokens_per_s=3000.0, dt_ms=1.0)
    shown = _shown(run_dir)
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.splitlines()
            if line.count("│") == 3}
    # the newest attempt's loss; tokens/s the median of 1002, 1003, 1004, 2005, 2006 and 3000 (the
    # first window and the superseded steps left out); the last sample is step 4's, not step 7's
    assert rows["steps"] == "7/8" and rows["last loss"] == "0.5000" and rows["tokens/s (training)"] == "1,504", rows
    assert "last sample @ step 4" in shown and "Lost" not in shown


def test_runs_show_of_a_long_run_leaves_a_column_cache_and_shows_the_same_from_it(tmp_path):
    from tuiLM.reader import CACHE

    from .fixtures.fixture_runs import write_big_events

    run_dir = tmp_path / "runs" / "long"
    run_dir.mkdir(parents=True)
    assert write_big_events(run_dir / EVENTS, 30_000) > 4 << 20
    first = _shown(run_dir)
    assert (run_dir / CACHE).is_file()  # the next show (and the app) starts from it
    assert _shown(run_dir) == first and "30,000" in first


def test_a_run_with_no_readable_event_is_refused_and_leaves_nothing(tmp_path):
    run_dir = tmp_path / "runs" / "junk-1"
    run_dir.mkdir(parents=True)
    (run_dir / EVENTS).write_text("not json\n{\"kind\": 5}\n[1, 2]\n")
    with pytest.raises(UserError, match="none of the 3 lines"):
        export_csv(run_dir, tmp_path / "csv")
    with pytest.raises(UserError, match="no line of its events.jsonl"):
        export_tensorboard(run_dir, tmp_path / "tb")
    assert not (tmp_path / "csv" / "junk-1.csv").exists() and not (tmp_path / "tb" / "junk-1").exists()
    (run_dir / EVENTS).write_text("")  # a run that has not written anything yet: an empty export
    assert export_csv(run_dir, tmp_path / "csv").read_text() == "run,seed,step,tokens,time\n"


def test_a_full_disk_during_a_tensorboard_export_is_one_message_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    run_dir = fake_run(tmp_path / "runs")
    from tuiLM import export

    real = export.TBWriter.write

    def full(self, ev):
        if ev.get("kind") == "eval":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, ev)

    monkeypatch.setattr(export.TBWriter, "write", full)
    with pytest.raises(UserError, match=r"No space left on device while writing .*tb/fake-1"):
        export_tensorboard(run_dir, tmp_path / "tb")
    assert not (tmp_path / "tb" / "fake-1").exists()  # the retry is not blocked by a half-written folder
    monkeypatch.undo()
    assert export_tensorboard(run_dir, tmp_path / "tb").is_dir()


def test_an_error_on_a_temp_file_names_the_file_it_was_for():
    import errno

    from tuiLM.runs import write_error_message

    e = OSError(errno.EROFS, "Read-only file system")
    e.filename = "out/.run-1.csv.d25a18d93ecc.tmp"
    assert write_error_message(e) == "Read-only file system while writing out/run-1.csv"


def test_cli_export_of_a_running_run_says_it_is_partial(tmp_path):
    """A run still training was exported without a word: the file holds what it wrote so far."""
    import os

    from tuiLM.ownership import acquire_run_lock

    run = fake_run(tmp_path / "runs", "live-1")
    lines = (run / EVENTS).read_text().splitlines(keepends=True)
    (run / EVENTS).write_text("".join(l for l in lines if '"run_end"' not in l))
    fd = acquire_run_lock(run)  # a trainer owns it
    try:
        r = cli("export", "live-1", "--to", "csv", "out", cwd=tmp_path)
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    assert "(still running: up to step" in r.stdout and "export again for the rest" in r.stdout
    r = cli("export", "live-1", "--to", "csv", "out2", cwd=tmp_path)
    assert "still running" not in r.stdout  # (its trainer gone: dead, not running)
