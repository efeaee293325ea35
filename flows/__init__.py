"""Prefect flows (thin: they compose tasks): nightly generation, self-play round, fine-tune, benchmark."""
