"""The editor's problems list: one line per problem, rebuilt only when the problems change."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...config.load import Problem


def problem_prompt(p: Problem) -> Text:
    """One line of the list: the level, the key path, the message."""
    icon, style = ("✗", "bold red") if p.is_error else ("⚠", "yellow")
    return Text.assemble((f"{icon} ", style), (p.path or "preset", "bold"), ": ", p.message)


class ProblemList(OptionList):
    """Option ``p{i}`` is problem ``i`` of the list last shown (selecting one reveals its field)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple | None = None
        self._prompts: list[Text] = []  # what the list shows

    def show(self, problems: Sequence[Problem]) -> None:
        key = tuple((p.level, p.path, p.message) for p in problems)
        if key == self._key:  # rebuilding the list re-lays out the side panel: only on change
            return
        self._key = key
        prompts = [problem_prompt(p) for p in problems]
        shown = self._prompts
        if prompts and len(prompts) == len(shown):
            # Same number of problems (typing 38 -> 380 changes only a message): replace the prompts
            # that changed. A repaint, and no layout pass unless a prompt now wraps differently.
            for i, (new, old) in enumerate(zip(prompts, shown)):
                if new != old:
                    self.replace_option_prompt_at_index(i, new)
        else:
            self.clear_options()
            if not problems:
                self.add_option(Option(Text("✓ no problems", style="green"), id="none", disabled=True))
            self.add_options([Option(prompt, id=f"p{i}") for i, prompt in enumerate(prompts)])
        self._prompts = prompts
