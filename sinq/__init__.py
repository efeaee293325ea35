"""sinq: a data factory for code-reasoning training data (the semantic inequivalence game)."""

__version__ = "0.1.0"
