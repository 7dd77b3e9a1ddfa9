"""Presets: TOML in, a resolved ``Preset`` out (defaults < file < ``--set`` overrides).

Loading never raises for problems a user can fix in the file: unknown keys and wrong types become
``Problem`` entries (the field keeps its default) so every problem is reported at once. Only an
unreadable file or a TOML syntax error raises ``PresetError``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from .schema import ALIASES, BY_PATH, FIELDS, SECTIONS, Field, defaults


class PresetError(UserError):
    """A preset that cannot be read at all (missing file, TOML syntax, malformed override)."""


@dataclass(frozen=True)
class Problem:
    level: str  # "error" | "warning"
    path: str  # key path such as "model.d_model" (or "" for the whole file)
    message: str
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.level == "error"

    def __str__(self) -> str:
        where = self.path or "preset"
        if self.line:
            where += f" (line {self.line})"
        return f"{self.level}: {where}: {self.message}"


class Section:
    """Read-only attribute view of one section: ``preset.model.d_model``."""

    __slots__ = ("_name", "_values")

    def __init__(self, name: str, values: dict[str, Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"{self._name}.{key} is not a preset field") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("preset sections are read-only; use Preset.with_values()")

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Section({self._name}, {self._values})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and self._values == other._values


@dataclass
class Preset:
    """A fully resolved preset. Sections are attributes: ``preset.model``, ``preset.optim`` ..."""

    values: dict[str, dict[str, Any]]
    source: Path | None = None
    lines: dict[str, int] = field(default_factory=dict)  # key path -> line in the source file

    def __getattr__(self, name: str) -> Section:
        if name in SECTIONS:
            return Section(name, self.values[name])
        raise AttributeError(name)

    def get(self, path: str) -> Any:
        section, key = path.split(".", 1)
        return self.values[section][key]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s: dict(v) for s, v in self.values.items()}

    def with_values(self, changes: dict[str, Any]) -> "Preset":
        """A copy with ``{"section.key": value}`` applied (values must already be typed)."""
        values = self.to_dict()
        for path, value in changes.items():
            section, key = path.split(".", 1)
            values[section][key] = value
        return Preset(values, self.source, dict(self.lines))


# -- parsing -------------------------------------------------------------------------------------

_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_toml_text(text: str, name: str = "<preset>") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise PresetError(f"{name}: TOML nested too deeply to be a preset (a preset has one level of "
                          f"[section] tables)") from None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _POS_RE.search(msg)
        if m:
            reason = _plain(msg[: m.start()].strip())
            raise PresetError(f"{name}:{m.group(1)}:{m.group(2)}: TOML syntax error: {reason}") from None
        if "end of document" in msg:
            last = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
            reason = msg.split("(")[0].strip()
            raise PresetError(f"{name}:{last}: TOML syntax error at end of file: {reason}") from None
        raise PresetError(f"{name}: TOML syntax error: {msg}") from None


_TWICE_RE = re.compile(r"Cannot declare \(((?:'[^']*',? ?)+)\) twice")


def _plain(reason: str) -> str:
    """tomllib's "Cannot declare ('model',) twice" and "Cannot overwrite a value" in a preset's words."""
    if reason == "Cannot overwrite a value":
        return "this key or table is already defined above (each key once per table, each table once)"
    m = _TWICE_RE.fullmatch(reason)
    if not m:
        return reason
    table = ".".join(re.findall(r"'([^']*)'", m.group(1)))
    return (f"[{table}] is declared twice: write each table once (a dotted key such as {table}.x = … "
            f"outside [{table}] declares it too: move such a key inside [{table}])")


MAX_PRESET_BYTES = 1 << 20  # presets are a few KiB; anything bigger is not one (and is not read whole)
MAX_UNKNOWN_KEYS = 20  # unknown keys reported one by one; the rest are counted


def read_preset_text(path: str | Path) -> str:
    import stat

    p = Path(path)
    if not p.exists():
        raise PresetError(f"{p}: " + ("a symbolic link to nothing (or a loop)" if p.is_symlink() else "no such preset file"))
    if p.is_dir():
        raise PresetError(f"{p}: is a folder, not a preset file")
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PresetError(f"{p}: not a regular file (a device or pipe), not a preset file")
            data = fh.read(MAX_PRESET_BYTES + 1)
        if len(data) > MAX_PRESET_BYTES:
            raise PresetError(f"{p}: larger than {MAX_PRESET_BYTES // 1024} KiB: not a preset file")
        return data.decode("utf-8-sig")  # (a byte-order mark, as some Windows editors write, is dropped)
    except UnicodeDecodeError:
        raise PresetError(f"{p}: not UTF-8 text") from None
    except OSError as e:
        raise PresetError(f"{p}: cannot read ({e.strerror})") from None


_HEADER_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]")
_KEY_RE = re.compile(r"""^\s*("([^"]+)"|'([^']+)'|([A-Za-z0-9_.\-]+))\s*=""")


def locate_keys(text: str) -> dict[str, int]:
    """Map ``section.key`` to its 1-based line in a TOML text: tables, plain, dotted and quoted keys
    (a study file's ``"optim.lr" = ...`` under ``[space]`` is ``space.optim.lr``)."""
    out: dict[str, int] = {}
    section = ""
    for i, line in enumerate(text.splitlines(), start=1):
        m = _HEADER_RE.match(line)
        if m:
            section = m.group(1)
            out.setdefault(section, i)
            continue
        m = _KEY_RE.match(line)
        if m:
            key = m.group(2) or m.group(3) or m.group(4)
            path = f"{section}.{key}" if section else key
            out.setdefault(path, i)
    return out


def suggest(path: str) -> str:
    """' (did you mean model.d_model?)' or ''."""
    if path in ALIASES:
        return f" (did you mean {ALIASES[path]}?)"
    if "." not in path:  # a table name
        close = difflib.get_close_matches(path, list(SECTIONS), n=1, cutoff=0.6)
        return f" (did you mean {close[0]}?)" if close else ""
    key = path.rsplit(".", 1)[-1]
    for alias, target in ALIASES.items():
        if alias.rsplit(".", 1)[-1] == key:
            return f" (did you mean {target}?)"
    same_key = [p for p in BY_PATH if p.endswith("." + key)]  # the right key under the wrong table
    close = same_key[:1] or difflib.get_close_matches(path, list(BY_PATH), n=1, cutoff=0.6)
    if not close:
        keys = difflib.get_close_matches(key, sorted({p.split(".")[1] for p in BY_PATH}), n=1, cutoff=0.7)
        close = [p for p in BY_PATH if keys and p.endswith("." + keys[0])][:1]
    return f" (did you mean {close[0]}?)" if close else ""


# -- typing --------------------------------------------------------------------------------------

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def coerce(f: Field, value: Any) -> Any:
    """Check a value parsed from TOML against the field type; raise ValueError with a message."""
    if f.type is bool:
        if isinstance(value, bool):
            return value
    elif f.type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            raise ValueError(f"expected an integer, got {value!r} (write {int(value)})")
    elif f.type is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif f.type is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"expected {_TYPE_NAMES[f.type]}, got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a table" if isinstance(value, dict) else "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return repr(value)


def coerce_text(f: Field, text: str) -> Any:
    """Turn text typed by a user (``--set`` value, form input) into a typed value or raise ValueError."""
    s = text.strip()
    if f.type is str:
        if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
            try:
                return tomllib.loads(f"v = {s}")["v"]
            except tomllib.TOMLDecodeError:
                pass
        return text
    if f.type is bool:
        low = s.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    try:
        value = tomllib.loads(f"v = {s}")["v"]
    except tomllib.TOMLDecodeError:
        raise ValueError(f"expected {_TYPE_NAMES[f.type]}, got {text!r}") from None
    return coerce(f, value)


def parse_override(text: str) -> tuple[str, str]:
    """``'model.d_model=384'`` -> ``('model.d_model', '384')``."""
    if "=" not in text:
        raise PresetError(f"--set {text!r}: expected section.key=value", exit_code=2)
    path, value = text.split("=", 1)
    path = path.strip()
    if path.count(".") != 1 or not all(path.split(".")):
        raise PresetError(f"--set {text!r}: the key must be section.key, e.g. model.d_model", exit_code=2)
    return path, value


# -- resolving -----------------------------------------------------------------------------------

def resolve(raw: dict[str, Any], overrides: Iterable[str] = (), *, source: Path | None = None,
            lines: dict[str, int] | None = None) -> tuple[Preset, list[Problem]]:
    """Merge defaults < raw TOML dict < overrides. Unknown keys and type errors become problems."""
    lines = dict(lines or {})
    values = defaults()
    problems: list[Problem] = []
    unknown = 0

    def unknown_key(path: str, what: str) -> None:
        nonlocal unknown
        unknown += 1
        if unknown <= MAX_UNKNOWN_KEYS:  # "did you mean" costs a fuzzy match each: only for those shown
            problems.append(Problem("error", path, f"{what}{suggest(path)}", lines.get(path)))

    for section, table in raw.items():
        if section not in SECTIONS:
            unknown_key(section, "unknown table" if isinstance(table, dict) else "unknown key")
            continue
        if not isinstance(table, dict):
            problems.append(Problem("error", section, f"[{section}] must be a table", lines.get(section)))
            continue
        for key, value in table.items():
            path = f"{section}.{key}"
            f = BY_PATH.get(path)
            if f is None:
                unknown_key(path, "unknown key")
                continue
            try:
                values[section][key] = coerce(f, value)
            except ValueError as e:
                problems.append(Problem("error", path, str(e), lines.get(path)))
    if unknown > MAX_UNKNOWN_KEYS:
        problems.append(Problem("error", "", f"... and {unknown - MAX_UNKNOWN_KEYS:,} more unknown keys "
                                             f"({unknown:,} in all)"))
    for text in overrides:
        path, value_text = parse_override(text)
        f = BY_PATH.get(path)
        if f is None:
            problems.append(Problem("error", path, f"unknown key in --set{suggest(path)}"))
            continue
        lines.pop(path, None)  # the value comes from --set now: the file's line no longer describes it
        try:
            values[f.section][f.key] = coerce_text(f, value_text)
        except ValueError as e:
            problems.append(Problem("error", path, f"--set: {e}"))
    return Preset(values, source, lines), problems


def load(path: str | Path, overrides: Iterable[str] = (), with_budget: bool = True) -> tuple[Preset, list[Problem]]:
    """Read, resolve and validate a preset file. Raises PresetError only for unreadable input.
    ``with_budget=False``: no memory estimate against the budget (a list of presets checks many)."""
    from .validate import validate

    p = Path(path)
    text = read_preset_text(p)
    raw = parse_toml_text(text, str(p))
    preset, problems = resolve(raw, overrides, source=p, lines=locate_keys(text))
    return preset, problems + validate(preset, with_budget=with_budget)


def load_text(text: str, overrides: Iterable[str] = (), name: str = "<preset>") -> tuple[Preset, list[Problem]]:
    from .validate import validate

    raw = parse_toml_text(text, name)
    preset, problems = resolve(raw, overrides, lines=locate_keys(text))
    return preset, problems + validate(preset)


def default_preset() -> Preset:
    return Preset(defaults())


__all__ = ["FIELDS", "Preset", "PresetError", "Problem", "Section", "coerce", "coerce_text", "default_preset",
           "load", "load_text", "locate_keys", "parse_override", "parse_toml_text", "resolve", "suggest"]
