"""``tuilm sample`` prints the text as it is generated (not all at once at the end), and what it prints
adds up to exactly the text of an unstreamed sample."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from .conftest import TINY_GPT, make_preset


@pytest.fixture
def byte_run(tmp_path) -> Path:
    """A run with an untrained checkpoint and the byte tokenizer (no training: its random weights draw
    any byte, so the text has partial UTF-8 characters, tabs and control codes)."""
    import torch

    from tuiLM.launch import create_run
    from tuiLM.models import build_model
    from tuiLM.runs import CHECKPOINTS
    from tuiLM.train.checkpoint import save_checkpoint
    from tuiLM.train.tokenizers import TOKENIZER_FILE, ByteTokenizer

    preset = make_preset({**TINY_GPT, "sample.prompt": "a\tb é[:x:]"})
    run_dir = create_run(preset, name="stream", root=tmp_path / "runs")
    (run_dir / TOKENIZER_FILE).write_text(json.dumps(ByteTokenizer().to_json()))
    torch.manual_seed(0)
    model = build_model(preset.model, 256, preset.data.seq_len)
    save_checkpoint(run_dir / CHECKPOINTS, 3, {"model": model.state_dict(), "step": 3, "vocab_size": 256}, {}, keep=1)
    return run_dir


class Recorder(io.StringIO):
    """A file that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


def rich_console(file: io.StringIO) -> Console:
    return Console(file=file, width=80, force_terminal=False)


def unstreamed_rich(run_dir: Path, n: int) -> str:
    """The header as Rich prints it, then the whole text as drawn (tabs kept) less the control codes a
    terminal would act on, then a newline."""
    from tuiLM.train.sampling import _UNPRINTABLE, sample_text

    prompt, text, step = sample_text(run_dir, max_new_tokens=n)
    out = rich_console(io.StringIO())
    out.print(f"{run_dir.name} @ step {step}", style="dim", highlight=False, markup=False)
    return out.file.getvalue() + _UNPRINTABLE.sub("", prompt + text) + "\n"


def test_streamed_sample_prints_exactly_the_unstreamed_text_in_many_writes(byte_run, monkeypatch):
    from tuiLM.train import sampling

    monkeypatch.setattr(sampling, "STREAM_EVERY_S", 0.0)  # print at every token
    prompt, text, _ = sampling.sample_text(byte_run, max_new_tokens=300)
    assert "\ufffd" in text and any(c in text for c in "\x1b\r\x07")  # partial UTF-8 and control codes drawn
    expected = unstreamed_rich(byte_run, 300)
    rec = Recorder()
    assert sampling.sample_command(byte_run, max_new_tokens=300, console=rich_console(rec)) == 0
    assert rec.getvalue() == expected and "a\tb é[:x:]" in expected  # the tab as drawn, no emoji
    assert not any(c in rec.getvalue() for c in "\x1b\r\x07")  # nothing a terminal would act on
    assert len([w for w in rec.writes if w]) > 20  # piece by piece, not the whole text at the end


def test_streamed_sample_without_a_console_matches_and_streams(byte_run, monkeypatch):
    from tuiLM.train import sampling

    monkeypatch.setattr(sampling, "STREAM_EVERY_S", 0.0)
    prompt, text, step = sampling.sample_text(byte_run, max_new_tokens=200, seed=5)
    rec = Recorder()
    monkeypatch.setattr(sys, "stdout", rec)
    assert sampling.sample_command(byte_run, max_new_tokens=200, seed=5) == 0
    monkeypatch.undo()
    assert rec.getvalue() == f"{byte_run.name} @ step {step}\n{sampling._UNPRINTABLE.sub('', prompt + text)}\n"
    assert len([w for w in rec.writes if w]) > 20


def test_a_character_split_over_tokens_is_printed_whole(monkeypatch):
    """Byte tokens: é, €, 😀 arrive a byte at a time; no piece ends in half a character (U+FFFD)."""
    from tuiLM.train import sampling
    from tuiLM.train.tokenizers import ByteTokenizer

    monkeypatch.setattr(sampling, "STREAM_EVERY_S", 0.0)
    tok = ByteTokenizer()
    text = "é€x😀\t\ufffdend😀"
    pieces: list[str] = []
    stream = sampling._Stream(tok, pieces.append)
    ids = tok.encode(text)
    for i in ids:
        stream.token(i)
    stream.finish(tok.decode(ids))
    assert "".join(pieces) == text
    assert len(pieces) > 5 and not any(p.endswith("\ufffd") for p in pieces[:-1])
    assert "".join(pieces[:-1]) == text[:len("".join(pieces[:-1]))]  # every piece was final when printed


def test_ctrl_c_keeps_what_was_printed_and_exits_cleanly(byte_run, monkeypatch, capsys):
    from tuiLM.cli import main
    from tuiLM.train import sampling

    monkeypatch.setattr(sampling, "STREAM_EVERY_S", 0.0)
    prompt, text, step = sampling.sample_text(byte_run, max_new_tokens=500)
    token = sampling._Stream.token

    def interrupted(self, i):
        token(self, i)
        if len(self.ids) == 40:
            raise KeyboardInterrupt

    monkeypatch.setattr(sampling._Stream, "token", interrupted)
    with pytest.raises(SystemExit) as e:
        main(["sample", str(byte_run), "-n", "500"])
    out, err = capsys.readouterr()
    assert e.value.code == 130
    assert "Traceback" not in out + err and "interrupted after 40 of 500 tokens" in err
    assert f"@ step {step}" in out and out.endswith("\n")
    shown = out.split("\n", 1)[1][:-1]
    whole = unstreamed_rich(byte_run, 500).split("\n", 1)[1]
    assert whole.startswith(shown) and len("a\tb é[:x:]") < len(shown) < len(whole) - 100  # a part, as it was
