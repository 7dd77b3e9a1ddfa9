"""The preset editor's F6, apart from its layout and flow: the focused field becomes a search dimension
of a study file (created when new, saved at once). A mixin of ``PresetEditor``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .editorstate import add_field_to_study, default_study_path


class AddToStudy:
    """F6 for a screen that has ``current_field()``, ``has_unsaved()``, ``path``, ``values``, ``type_errors``
    and ``study_file`` (the study file F6 adds to, asked the first time)."""

    path: Path | None
    study_file: Path | None
    values: dict[str, Any]
    type_errors: dict[str, str]
    app: Any
    current_field: Any
    has_unsaved: Any
    notify: Any

    def action_add_to_study(self) -> None:
        """The focused field becomes a search dimension of a study file (created when new), saved at once."""
        from .dialogs import AskScreen

        key = self.current_field()
        if key is None:
            self.notify("Focus a field first, then F6 adds it to a study", severity="warning")
            return
        if key in self.type_errors:
            self.notify(f"{key} cannot be read: fix the value first", severity="error", markup=False)
            return
        default = default_study_path(self.path, self.study_file)

        def done(answer: str | None) -> None:
            if answer:
                self.add_to_study(Path(answer).expanduser(), key)

        self.app.push_screen(AskScreen(f"Add {key} to the study file (created if new)", str(default)), done)

    def add_to_study(self, study_path: Path, key: str) -> None:
        from ...errors import UserError

        try:
            self.study_file, said = add_field_to_study(study_path, self.path, key, self.values[key])
        except UserError as e:
            self.notify(str(e), severity="error", timeout=8, markup=False)
            return
        self.notify(said + (" (save the preset too: the study starts from the file)" if self.has_unsaved() else ""),
                    timeout=6, markup=False)
