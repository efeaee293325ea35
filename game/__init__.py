"""The rules of the game, pure and I/O-free: prompts, response parsing, input validation, difficulty, selection."""
