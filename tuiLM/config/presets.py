"""Finding presets: a path, or a name looked up in ./presets and the shipped presets folder."""

from __future__ import annotations

from pathlib import Path

from .load import PresetError

SHIPPED = Path(__file__).resolve().parents[2] / "presets"


def preset_dirs(extra: list[Path] | None = None) -> list[Path]:
    dirs = list(extra or []) + [Path("presets"), SHIPPED]
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if key not in seen and d.is_dir():
            seen.add(key)
            out.append(d)
    return out


def list_presets(extra: list[Path] | None = None) -> list[Path]:
    out: dict[str, Path] = {}
    for d in preset_dirs(extra):
        for p in sorted(d.glob("*.toml")):
            out.setdefault(p.stem, p)
    return sorted(out.values(), key=lambda p: p.stem)


def find_preset(ref: str | Path) -> Path:
    """``presets/x.toml``, ``x.toml`` or ``x``."""
    p = Path(ref)
    if p.exists():
        return p
    name = p.name if p.suffix == ".toml" else p.name + ".toml"
    for d in preset_dirs():
        if (d / name).is_file():
            return d / name
    known = ", ".join(q.stem for q in list_presets()[:12])
    raise PresetError(f"{ref}: no such preset file (shipped presets: {known})")
