"""Text from users and runs shown as it is, never read as markup.

Textual reads a ``str`` as markup almost everywhere: a DataTable cell as Rich markup (``[x]`` vanishes,
``[/]`` raises MarkupError, ``:smile:`` becomes an emoji), a Static, Label, notification or border
title as Textual content markup. Preset names and values, run output, problem messages and error
texts can hold any of that, so they reach widgets as ``Text`` / ``Content`` objects (literal), with
``markup=False`` (notify, Static, Label), or through ``cell`` below.
"""

from __future__ import annotations

from rich.text import Text


def cell(value: str) -> str | Text:
    """A DataTable cell that shows ``value`` literally.

    Text that markup could change becomes the ``Text`` DataTable would build for a plain string in a
    one-line row (``default_cell_formatter``: no wrap, no end); any other text stays a ``str``, which
    DataTable renders the same way, so ordinary cells look exactly as before.
    """
    if "[" in value or ":" in value:
        return Text(value, no_wrap=True, end="")
    return value
