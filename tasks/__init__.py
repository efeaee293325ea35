"""Prefect tasks: batch-sized steps (source, generate, verify, evaluate, store, export)."""
