"""GRPO rewards that run the sandbox: a completion earns 1.0 when what it claims is verified there. Untrusted model
output never runs in this process; each reward batch is one sandbox batch (the pool's slots cap concurrency)."""

from __future__ import annotations

from sinq.game.parsing import parse_alice, parse_bob
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.verify import Pair, verify_many


def _text(completion) -> str:
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")
    return str(completion or "")


class SandboxReward:
    """Evaluator: the answer's input makes original and variant diverge. Generator: the answer's variant and input
    diverge from the original (a verified pair)."""

    def __init__(self, sandbox: WorkerPool, role: str) -> None:
        self.sandbox = sandbox
        self.role = role
        self.__name__ = f"sandbox_{role}_reward"
        self.total = self.count = 0.0

    def __call__(self, prompts, completions, original, entry_point, variant=None, **_) -> list[float]:
        pairs, slots = [], []
        for i, completion in enumerate(completions):
            text = _text(completion)
            if self.role == "evaluator":
                parsed = parse_bob(text)
                if parsed.input is not None:
                    pairs.append(Pair(str(i), original[i], variant[i], entry_point[i], parsed.input))
                    slots.append(i)
            else:
                parsed = parse_alice(text, original[i], entry_point[i])
                if parsed.valid:
                    pairs.append(Pair(str(i), original[i], parsed.program, entry_point[i], parsed.input))
                    slots.append(i)
        rewards = [0.0] * len(completions)
        for i, verdict in zip(slots, verify_many(pairs, self.sandbox) if pairs else [], strict=True):
            rewards[i] = 1.0 if verdict.verdict == "diverges" else 0.0
        self.total += sum(rewards)
        self.count += len(rewards)
        return rewards

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
