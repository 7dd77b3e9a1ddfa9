"""The Textual app: presets editor, launcher, live dashboards, run list and compare view.

Nothing here imports torch: the trainer runs in its own process and the run directory is the only
interface (tests/test_tui_app.py checks that importing ``tuiLM.tui.app`` loads no torch).
"""
