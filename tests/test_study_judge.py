"""Judging a study against seed noise in `tuilm study show`, and confirm top-k, on the fixture study
(tests/fixtures/study: a real tiny study, 6 trials x 3 seeds with a baseline trial)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tuiLM.reader import effective_events, read_events
from tuiLM.runs import EVENTS, PRESET, list_runs

from .test_study_run import show_json, tuilm

FIXTURE = Path(__file__).parent / "fixtures" / "study" / "runs"


def copy_fixture(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "runs")
    return tmp_path / "runs"


def final_bpb(run_dir: Path) -> float:
    return [e for e in effective_events(read_events(run_dir / EVENTS)) if e["kind"] == "eval"][-1]["val_bpb"]


def run_seed(run_dir: Path) -> int:
    return tomllib.loads((run_dir / PRESET).read_text())["run"]["seed"]


def test_show_judges_every_trial_against_the_best_and_the_baseline(tmp_path):
    runs = copy_fixture(tmp_path)
    s = show_json(tmp_path, "fixture")
    done = [r for r in s["trials"] if r["state"] == "complete"]
    assert len(done) >= 3 and s["baseline"] == 0
    best = next(r for r in done if r["number"] == s["best"]["number"])
    for r in done:
        # seeds are run.seed + 0..k-1 of each run's own preset
        assert r["seeds"] == [run_seed(runs / rid) for rid in r["runs"]]
        if r is best:
            assert r["vs_best"] is None
            continue
        c = r["vs_best"]
        assert c["method"] == "paired" and c["k"] == 3
        # per-seed differences from the runs' own final evals (minimise: gain = best - trial < 0)
        d = [final_bpb(runs / a) - final_bpb(runs / b) for a, b in zip(best["runs"], r["runs"])]
        assert c["gain"] == pytest.approx(sum(d) / 3, abs=1e-12)
        assert c["gain"] <= 0
        assert c["verdict"].startswith("worse by") or c["verdict"].startswith("not distinguishable")
    if best["number"] != 0:
        assert s["best_vs_baseline"]["method"] == "paired"
        assert "paired over 3 seeds" in s["best_vs_baseline"]["verdict"]
    text = tuilm(tmp_path, "study", "show", "fixture")
    assert text.returncode == 0, text.stderr
    assert "vs best" in text.stdout and "best vs runner-up" in text.stdout
    if best["number"] != 0:
        assert "best vs baseline (trial 0)" in text.stdout


@pytest.mark.slow
def test_confirm_top_k_reruns_the_best_with_fresh_seeds(tmp_path):
    runs = copy_fixture(tmp_path)
    before = {p.name for p in list_runs(runs)}
    original = show_json(tmp_path, "fixture")
    used = {s for r in original["trials"] for s in r["seeds"]}
    out = tuilm(tmp_path, "study", "confirm", "fixture", "--top", "2", "--seeds", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    new = sorted(p for p in list_runs(runs) if p.name not in before)
    assert len(new) == 4 and all(p.name.startswith("fixture-confirm1-t00") for p in new)
    seeds = {run_seed(p) for p in new}
    assert len(seeds) == 2 and not seeds & used  # fresh seeds, the same two for both configurations
    top2 = sorted((r for r in original["trials"] if r["state"] == "complete"), key=lambda r: r["value"])[:2]
    confirm = show_json(tmp_path, "fixture-confirm1")
    assert confirm["confirm_of"] == {"study": "fixture", "trials": [r["number"] for r in top2]}
    assert sorted(tuple(sorted(r["params"].items())) for r in confirm["trials"]) == \
        sorted(tuple(sorted(r["params"].items())) for r in top2)
    rk = show_json(tmp_path, "fixture")["confirms"][0]
    assert rk["study"] == "fixture-confirm1" and rk["finished"]
    assert [r["trial"] for r in rk["rows"]] == [r["number"] for r in top2]
    new_order = sorted(rk["rows"], key=lambda r: r["confirm_value"])
    assert rk["held"] == ([r["trial"] for r in new_order] == [r["number"] for r in top2])
    assert rk["best_vs_runner_up"]["method"] == "paired" and rk["best_vs_runner_up"]["k"] == 2
    assert "confirmation fixture-confirm1" in out.stdout
    assert ("the ranking held" in out.stdout) == rk["held"]


def test_confirm_without_a_completed_trial_is_a_clear_error(tmp_path):
    out = tuilm(tmp_path, "study", "confirm", "nope", "--top", "2")
    assert out.returncode != 0 and "no study 'nope'" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
