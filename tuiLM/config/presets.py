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
            if not is_study_file(p):  # study files (tuilm study run) sit beside presets in users' folders
                out.setdefault(p.stem, p)
    return sorted(out.values(), key=lambda p: p.stem)


def is_study_file(p: Path) -> bool:
    import re

    if not p.is_file():  # (open() on a FIFO would block)
        return False
    try:
        with open(p, "rb") as fh:
            return re.search(rb"(?m)^\s*\[study\]", fh.read(65536)) is not None
    except OSError:
        return False


def find_preset(ref: str | Path) -> Path:
    """A preset file by path, or a known preset by name: ``x``, ``x.toml`` or ``presets/x.toml`` (the
    shipped folder's own name). Any other path that does not exist is an error, never a shipped preset
    of the same file name: a typo in a folder must not train another experiment without a word."""
    p = Path(ref)
    if p.is_file():
        return p
    if p.exists():
        what = "a folder" if p.is_dir() else "not a regular file"
        raise PresetError(f"{ref}: not a preset file ({what}; presets are .toml files)")
    name = p.name if p.suffix == ".toml" else p.name + ".toml"
    if p.parent in (Path("."), Path("presets")):
        for d in preset_dirs():
            if (d / name).is_file():
                return d / name
    raise PresetError(f"{ref}: no such preset file{_did_you_mean(p)} (presets: "
                      f"{', '.join(q.stem for q in list_presets())})")


def _did_you_mean(p: Path) -> str:
    """The nearest preset: a file in the folder the path names, else a known preset name."""
    import difflib

    stem = p.name[:-5] if p.name.endswith(".toml") else p.name
    if len(p.parts) > 1 and p.parent.is_dir():
        files = {q.stem: q for q in sorted(p.parent.glob("*.toml"))}
        close = difflib.get_close_matches(stem, list(files), n=1, cutoff=0.6)
        if close:
            return f"; did you mean {files[close[0]]}?"
    close = difflib.get_close_matches(stem, [q.stem for q in list_presets()], n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
