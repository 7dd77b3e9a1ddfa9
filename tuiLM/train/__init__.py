"""The trainer: runs in its own process (``python -m tuiLM.train RUN_DIR``); never imports Textual or Typer."""
