"""tuiLM: a terminal training console for small-LM hyperparameter experiments."""

__version__ = "0.1.0"
