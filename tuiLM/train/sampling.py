"""``tuilm sample RUN``: generate text from a run's latest checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config.load import load
from ..errors import UserError
from ..runs import CHECKPOINTS, PRESET
from .checkpoint import latest_checkpoint, load_checkpoint
from .tokenizers import load_tokenizer
from .trainer import DistInfo, resolve_device


def sample_text(run_dir: Path, prompt: str | None = None, max_new_tokens: int | None = None,
                temperature: float | None = None, top_k: int | None = None, seed: int | None = None) -> tuple[str, str, int]:
    """(prompt, generated text, checkpoint step). Unset arguments take the run's [sample] values."""
    from ..models import build_model
    from ..models.generate import generate

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
    out = generate(model, idx, max_new_tokens or s.max_new_tokens, temperature=s.temperature if temperature is None
                   else temperature, top_k=s.top_k if top_k is None else top_k, seed=s.seed if seed is None else seed,
                   vocab_limit=tok.vocab_size)
    return prompt, tok.decode(out[0, len(ids):].tolist()), int(state["step"])


def sample_command(run_dir: Path, prompt: str | None = None, max_new_tokens: int | None = None,
                   temperature: float | None = None, top_k: int | None = None, seed: int | None = None,
                   console: Any = None) -> int:
    """Print a sample; ``console`` is the CLI's Rich console (plain stdout when None: the trainer
    package never imports UI libraries)."""
    prompt, text, step = sample_text(run_dir, prompt, max_new_tokens, temperature, top_k, seed)
    header = f"{Path(run_dir).name} @ step {step}"
    if console is None:
        print(header, prompt + text, sep="\n", flush=True)
        return 0
    console.print(header, style="dim", highlight=False, markup=False)
    console.print(prompt + text, markup=False, highlight=False, soft_wrap=True)
    return 0
