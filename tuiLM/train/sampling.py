"""``tuilm sample RUN``: generate text from a run's latest checkpoint."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..config.load import load
from ..errors import UserError
from ..runs import CHECKPOINTS, PRESET
from .checkpoint import latest_checkpoint, load_checkpoint
from .tokenizers import Tokenizer, load_tokenizer
from .trainer import DistInfo, resolve_device

# ``tuilm sample`` prints the text as it is generated: what is new at most this often [s], never
# spending more than about 1/STREAM_DECODE_SHARE of the time on decoding the text so far; 0 = at every
# token (tests)
STREAM_EVERY_S = 0.2
STREAM_DECODE_SHARE = 20


@dataclass
class _Sampler:
    """A loaded run, ready to generate."""
    prompt: str
    step: int
    tok: Tokenizer
    model: nn.Module
    idx: torch.Tensor
    options: dict[str, Any]


def _load_sampler(run_dir: Path, prompt: str | None, max_new_tokens: int | None, temperature: float | None,
                  top_k: int | None, seed: int | None) -> _Sampler:
    from ..models import build_model

    run_dir = Path(run_dir)
    preset, problems = load(run_dir / PRESET)
    errors = [p for p in problems if p.is_error]
    if errors:
        raise UserError(f"{run_dir / PRESET}: " + "; ".join(str(p) for p in errors))
    s = preset.sample
    prompt = s.prompt if prompt is None else prompt
    tok = load_tokenizer(run_dir)
    ids = tok.encode(prompt)  # unknown characters raise a UserError naming them
    path = latest_checkpoint(run_dir / CHECKPOINTS)
    if path is None:
        raise UserError(f"{run_dir}: no checkpoint yet (checkpoints are written every checkpoint.every steps "
                        f"and at the end)")
    state = load_checkpoint(path)
    device = resolve_device(preset.system.device, DistInfo())
    model = build_model(preset.model, int(state.get("vocab_size", tok.vocab_size)), preset.data.seq_len)
    model.load_state_dict(state["model"])
    model.to(device)
    if not ids:  # an empty prompt: start from a newline, the most neutral context
        ids = tok.encode("\n") if tok.kind != "ids" else [0]
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    options = dict(max_new_tokens=max_new_tokens or s.max_new_tokens,
                   temperature=s.temperature if temperature is None else temperature,
                   top_k=s.top_k if top_k is None else top_k, seed=s.seed if seed is None else seed,
                   vocab_limit=tok.vocab_size)
    return _Sampler(prompt, int(state["step"]), tok, model, idx, options)


def _generate(s: _Sampler, on_token: Callable[[int], None] | None = None) -> list[int]:
    """The new token ids."""
    from ..models.generate import generate

    out = generate(s.model, s.idx, **s.options, on_token=on_token)
    return out[0, s.idx.size(1):].tolist()


def sample_text(run_dir: Path, prompt: str | None = None, max_new_tokens: int | None = None,
                temperature: float | None = None, top_k: int | None = None, seed: int | None = None) -> tuple[str, str, int]:
    """(prompt, generated text, checkpoint step). Unset arguments take the run's [sample] values."""
    s = _load_sampler(run_dir, prompt, max_new_tokens, temperature, top_k, seed)
    return s.prompt, s.tok.decode(_generate(s)), s.step


# control codes a terminal would act on (escape sequences, a carriage return): a model can draw any byte
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Stream:
    """Decodes the ids drawn so far and prints what is new, at most every STREAM_EVERY_S seconds. The
    whole text is decoded each time (some tokenizers decode a piece alone differently) and a trailing
    U+FFFD is held back: a character whose UTF-8 bytes are still coming (a byte tokenizer, byte
    fallback) decodes to it until its last byte is drawn."""

    def __init__(self, tok: Tokenizer, write: Callable[[str], None]):
        self.tok, self.write = tok, write
        self.ids: list[int] = []
        self.shown = ""
        self.next_at = time.monotonic() + STREAM_EVERY_S

    def token(self, i: int) -> None:
        self.ids.append(i)
        if time.monotonic() >= self.next_at:
            self.flush()

    def flush(self) -> None:
        t0 = time.monotonic()
        text = self.tok.decode(self.ids).rstrip("\ufffd")
        if len(text) > len(self.shown) and text.startswith(self.shown):
            self.write(text[len(self.shown):])
            self.shown = text
        now = time.monotonic()
        if STREAM_EVERY_S > 0:
            self.next_at = now + max(STREAM_EVERY_S, STREAM_DECODE_SHARE * (now - t0))

    def finish(self, text: str) -> None:
        """Print the rest of the final text (the decode of all the ids)."""
        if text.startswith(self.shown):
            self.write(text[len(self.shown):])
        else:  # a tokenizer whose text changed behind what was shown: the whole text, once more
            self.write("\n" + text)
        self.shown = text


def sample_command(run_dir: Path, prompt: str | None = None, max_new_tokens: int | None = None,
                   temperature: float | None = None, top_k: int | None = None, seed: int | None = None,
                   console: Any = None) -> int:
    """Print a sample as it is generated; ``console`` is the CLI's Rich console (plain stdout when
    None: the trainer package never imports UI libraries). Ctrl-C stops it, keeping what was shown."""
    s = _load_sampler(run_dir, prompt, max_new_tokens, temperature, top_k, seed)
    header = f"{Path(run_dir).name} @ step {s.step}"
    if console is None:
        print(header, flush=True)
        out = sys.stdout
    else:
        console.print(header, style="dim", highlight=False, markup=False)
        out = console.file

    def write(text: str, end: str = "") -> None:  # the text as drawn (tabs too), less control codes
        out.write(_UNPRINTABLE.sub("", text) + end)
        out.flush()

    write(s.prompt)
    stream = _Stream(s.tok, write)
    try:
        try:
            ids = _generate(s, stream.token)
        except KeyboardInterrupt:
            stream.flush()
            write("", end="\n")
            print(f"interrupted after {len(stream.ids)} of {s.options['max_new_tokens']} tokens", file=sys.stderr,
                  flush=True)
            return 130
        stream.finish(s.tok.decode(ids))
        write("", end="\n")
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as `cat` does
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error again at exit
        except (OSError, ValueError):
            pass
        return 0
    return 0
