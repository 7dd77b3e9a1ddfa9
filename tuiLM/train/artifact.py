"""The parameter-golf artifact: int8 per-row quantised weights + zlib level 9, plus the model's code.

2-D float tensors with more than 65,536 entries: each row clipped at its max |w|, scale =
max(clip / 127, 1 / 127) stored fp16, q = clamp(round(w / scale), -127, 127) as int8. Smaller float
tensors: fp16, except scalar / mhc control parameters, kept fp32. Everything is serialised with
torch.save and compressed with zlib level 9; the artifact is those bytes plus the bytes of the
source files that define the model.
"""

from __future__ import annotations

import inspect
import io
import zlib
from pathlib import Path

import torch
from torch import nn

INT8_MIN_NUMEL = 65_536
CONTROL_ROLES = ("scalar", "mhc")


def quantize_row_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = w.float()
    clip = w.abs().amax(dim=1)
    # quantise with the fp16 scale that is stored, so dequantisation sees the same scale
    scale = torch.clamp(clip / 127.0, min=1.0 / 127.0).to(torch.float16)
    q = torch.clamp(torch.round(w / scale.float()[:, None]), -127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def dequantize_row_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()[:, None]


def quantize_state_dict(state: dict[str, torch.Tensor], roles: dict[str, str] | None = None) -> dict[str, object]:
    roles = roles or {}
    out: dict[str, object] = {}
    for name, t in state.items():
        t = t.detach().cpu()
        if not t.is_floating_point():
            out[name] = t.contiguous()
        elif t.ndim == 2 and t.numel() > INT8_MIN_NUMEL:
            q, s = quantize_row_int8(t)
            out[name] = {"q": q, "scale": s}
        elif roles.get(name) in CONTROL_ROLES:
            out[name] = t.float().contiguous()
        else:
            out[name] = t.half().contiguous()
    return out


def compressed_bytes(obj: object) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return len(zlib.compress(buf.getvalue(), 9))


def code_files(model: nn.Module) -> list[Path]:
    """Source files of every module class in the model (the code the artifact has to ship)."""
    torch_dir = Path(torch.__file__).resolve().parent
    files = set()
    for m in model.modules():
        try:
            src = inspect.getsourcefile(type(m))
        except TypeError:
            continue
        if src and not Path(src).resolve().is_relative_to(torch_dir):
            files.add(Path(src).resolve())
    return sorted(files)


def artifact_size(model: nn.Module) -> dict[str, int]:
    """{'artifact_bytes', 'model_bytes' (compressed weights), 'code_bytes'} measured on ``model``."""
    roles = model.param_roles() if hasattr(model, "param_roles") else {}
    state, seen = {}, set()
    for k, v in model.state_dict().items():  # a tied embedding/head is stored once
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if key not in seen:
            seen.add(key)
            state[k] = v
    model_bytes = compressed_bytes(quantize_state_dict(state, roles))
    code_bytes = sum(p.stat().st_size for p in code_files(model))
    return {"artifact_bytes": model_bytes + code_bytes, "model_bytes": model_bytes, "code_bytes": code_bytes}
