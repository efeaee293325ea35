"""Training-set builders, TRL jobs, model/adapter registry."""
