"""Studies: many runs as one experiment on Optuna (specs/studies.md). No torch import here."""
