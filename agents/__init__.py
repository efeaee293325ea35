"""Generator and evaluator agents: LLM backends and the model-free baselines."""
