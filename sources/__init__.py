"""Problem sources: HumanEval, MBPP-format files, Hugging Face datasets, column maps (loading only)."""
