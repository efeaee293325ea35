"""Evaluation suites: how good a model (and its adapter) is at the game and at code, with intervals."""
