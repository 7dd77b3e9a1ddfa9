"""JSON Schema (draft 2020-12) for presets, generated from the schema, for taplo / Even Better TOML."""

from __future__ import annotations

from typing import Any

from .schema import FIELDS, SECTIONS

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def json_schema() -> dict[str, Any]:
    props: dict[str, Any] = {}
    for section, title in SECTIONS.items():
        fields: dict[str, Any] = {}
        for f in FIELDS:
            if f.section != section:
                continue
            desc = f.help + (f" [{f.unit}]" if f.unit else "") + (f" (0 = {f.zero_means})" if f.zero_means else "")
            entry: dict[str, Any] = {"type": _JSON_TYPES[f.type], "default": f.default, "description": desc}
            if f.choices:
                entry["enum"] = list(f.choices)
            if f.min is not None:
                entry["exclusiveMinimum" if f.min_exclusive else "minimum"] = f.min
            if f.max is not None:
                entry["exclusiveMaximum" if f.max_exclusive else "maximum"] = f.max
            fields[f.key] = entry
        props[section] = {"type": "object", "description": title, "properties": fields,
                          "additionalProperties": False}
    # No "$id": taplo (the engine of Even Better TOML) rejects a relative one as "invalid schema" for
    # every preset, and an absolute one would be a URL editors might try to fetch.
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tuiLM preset",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }


def reference_markdown() -> str:
    """The README's preset reference table."""
    rows = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for f in FIELDS:
        default = repr(f.default) if f.type is str else str(f.default).lower() if f.type is bool else f.default
        allowed = f.range_text().replace("|", "\\|")
        desc = f.help + (f" [{f.unit}]" if f.unit else "") + (f"; 0 = {f.zero_means}" if f.zero_means else "")
        if f.archs:
            desc += f" ({'/'.join(f.archs)})"
        rows.append(f"| `{f.path}` | {f.type.__name__} | `{default}` | {allowed} | {desc.replace('|', '/')} |")
    return "\n".join(rows) + "\n"
