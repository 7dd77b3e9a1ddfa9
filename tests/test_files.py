"""Atomic writes leave files as readable as a plain open() would (mkstemp's 0600 hid them from the
user's group), and replacing a file keeps its mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tuiLM.config.write import atomic_write_text
from tuiLM.files import temp_beside


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_files_follow_the_umask_and_replaced_ones_keep_their_mode(tmp_path, umask_022):
    p = tmp_path / "preset.toml"
    atomic_write_text(p, "a = 1\n")
    assert mode(p) == 0o644 and p.read_text() == "a = 1\n"
    os.chmod(p, 0o640)  # the user's choice survives an edit
    atomic_write_text(p, "a = 2\n")
    assert mode(p) == 0o640 and p.read_text() == "a = 2\n"
    assert [x.name for x in tmp_path.iterdir()] == ["preset.toml"]  # no temp file left
    fd, tmp = temp_beside(tmp_path / "x.bin")
    os.close(fd)
    assert tmp.name.startswith(".x.bin.") and tmp.name.endswith(".tmp") and mode(tmp) == 0o644


def test_the_column_cache_export_and_checkpoint_are_group_readable(tmp_path, umask_022):
    from tuiLM.export import export_csv
    from tuiLM.reader import CACHE, refresh_cache
    from tuiLM.runs import EVENTS

    from .fixtures.fixture_runs import write_big_events

    run = tmp_path / "long"
    run.mkdir()
    write_big_events(run / EVENTS, 30_000)  # over the cache's 4 MiB threshold
    assert refresh_cache(run)
    assert mode(run / CACHE) == 0o644
    assert mode(export_csv(run, tmp_path / "out")) == 0o644
    torch = pytest.importorskip("torch")
    from tuiLM.train.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "ckpt", 4, {"w": torch.zeros(2)}, {}, keep=2)
    assert mode(ckpt) == 0o644 and mode(ckpt.with_suffix(".json")) == 0o644
