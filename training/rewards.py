"""GRPO rewards that run the sandbox: a completion earns 1.0 when what it claims is verified there. Untrusted model
output never runs in this process; each reward batch is one sandbox batch (the pool's slots cap concurrency)."""

from __future__ import annotations

from sinq.game.parsing import parse_alice, parse_bob
from sinq.game.scoring import score
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.verify import Pair, verify_many


def _text(completion) -> str:
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")
    return str(completion or "")


class SandboxReward:
    """Evaluator: the answer is right for the pair's kind (``sinq.game.scoring.score``, the game's own rule): on an
    inequivalent pair its input makes original and variant diverge; on an equivalent pair it says "Yes", or its
    input diverges (the pair was not equivalent after all). ``pair_kind`` comes from the prompt row's metadata
    (absent: inequivalent, as sets built before issue 15). Generator: the answer's variant and input diverge from
    the original (a verified pair)."""

    def __init__(self, sandbox: WorkerPool, role: str) -> None:
        self.sandbox = sandbox
        self.role = role
        self.__name__ = f"sandbox_{role}_reward"
        self.total = self.count = 0.0

    def __call__(self, prompts, completions, original, entry_point, variant=None, pair_kind=None,
                 **_) -> list[float]:
        kinds = [k or "inequivalent" for k in pair_kind] if pair_kind is not None else ["inequivalent"] * len(
            completions)
        pairs, slots, claims = [], [], {}
        for i, completion in enumerate(completions):
            text = _text(completion)
            if self.role == "evaluator":
                parsed = parse_bob(text)
                claims[i] = parsed.equivalent
                if kinds[i] == "equivalent" and parsed.equivalent is True:
                    continue  # right whatever input it also gives: nothing to run
                if parsed.input is not None:
                    pairs.append(Pair(str(i), original[i], variant[i], entry_point[i], parsed.input))
                    slots.append(i)
            else:
                parsed = parse_alice(text, original[i], entry_point[i])
                if parsed.valid:
                    pairs.append(Pair(str(i), original[i], parsed.program, entry_point[i], parsed.input))
                    slots.append(i)
        diverged = [False] * len(completions)
        for i, verdict in zip(slots, verify_many(pairs, self.sandbox) if pairs else [], strict=True):
            diverged[i] = verdict.verdict == "diverges"
        if self.role == "evaluator":
            rewards = [1.0 if score(kinds[i], False if diverged[i] else claims[i], diverged[i]).correct else 0.0
                       for i in range(len(completions))]
        else:
            rewards = [1.0 if d else 0.0 for d in diverged]
        self.total += sum(rewards)
        self.count += len(rewards)
        return rewards

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
