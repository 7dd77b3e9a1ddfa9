"""Preset schema, loading, validation and writing. Stdlib only (plus tomli-w / tomlkit for writing)."""

from .load import Preset, PresetError, Problem, default_preset, load, load_text, resolve
from .schema import FIELDS, SECTIONS, Field
from .validate import validate

__all__ = ["FIELDS", "SECTIONS", "Field", "Preset", "PresetError", "Problem", "default_preset", "load",
           "load_text", "resolve", "validate"]
