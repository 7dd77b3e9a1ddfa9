"""Shared fixtures. Keep heavy imports (torch) inside the tests that need them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuiLM.config.load import Preset, default_preset

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "presets"


def make_preset(changes: dict[str, Any] | None = None) -> Preset:
    """Defaults with ``{"section.key": value}`` applied (no file)."""
    return default_preset().with_values(changes or {})


TINY_GPT = {
    "model.arch": "gpt", "model.n_layers": 2, "model.d_model": 32, "model.n_heads": 4, "model.dropout": 0.0,
    "data.seq_len": 32, "train.device_batch_size": 4, "train.max_steps": 20, "eval.every": 10,
    "eval.batches": 2, "sample.every": 0, "checkpoint.every": 10, "diag.every": 5, "system.device": "cpu",
    "data.max_bytes": 200_000, "train.log_every": 1,
    # one torch thread per trainer: tests run trainers side by side on 2 cores, and oversubscribed
    # OpenMP threads spin-wait (3 s per step of a 33K-parameter model under load)
    "system.threads": 1,
}


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """A private runs/ folder for the test (TUILM_RUNS_DIR)."""
    d = tmp_path / "runs"
    monkeypatch.setenv("TUILM_RUNS_DIR", str(d))
    return d


class Result:
    """What ``tuilm ARGS`` did; unpacks as (exit code, stdout, stderr)."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = code, stdout, stderr
        self.output = stdout + stderr

    def __iter__(self):
        return iter((self.exit_code, self.stdout, self.stderr))


@pytest.fixture
def tuilm(capsys):
    """``tuilm ARGS`` in this process through the real entry point (its one error handler)."""
    from tuiLM.cli import main

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)
    return invoke
