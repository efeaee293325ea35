"""Prompts of the game (the paper's semantics, our wording), versioned; the version is stored with every request.

Alice (generator) gets a program, its entry point and a target difficulty, and answers in three level-1 sections:
``# Analysis``, ``# Generated program``, ``# Diverging input example``. Her equivalent-rewrite version (issue 15) gets a
program and its entry point and answers ``# Analysis``, ``# Generated program`` (the same heading, so the same parser
finds the program; no diverging input, as there should be none). Bob (evaluator) gets two programs and answers
``# Analysis``, ``# Equivalent?``, ``# Diverging input example``. Both also have a JSON structured-output form.
"""

from __future__ import annotations

ALICE_PROMPT_VERSION = "alice-v1"
BOB_PROMPT_VERSION = "bob-v1"
ALICE_EQUIVALENT_PROMPT_VERSION = "alice-equivalent-v1"

INEQUIVALENCE = (
    "Two programs are semantically equivalent when, for every input, they return equal values or raise the same "
    "exception, and they halt on the same inputs. They are NOT equivalent when at least one input (a diverging "
    "input) makes them return different values, raise different exceptions, or makes one halt and the other not."
)

DIFFICULTY = (
    "Difficulty runs from 0 to 10: at 0, most expert programmers would find a diverging input at once; at 9, only "
    "the best tenth of experts would; at 10, only the best 1 % or fewer would."
)

ALICE_SYSTEM = f"""You are an expert Python programmer playing a game about program semantics.
{INEQUIVALENCE}
Given a Python program, its entry point function and a target difficulty, write a similar program that is NOT
semantically equivalent to it, and a diverging input. Keep the name and the signature of the entry point unchanged.
Make the difference as hard to spot as the difficulty asks. {DIFFICULTY}
Return values and exceptions must be deterministic: no randomness, time, or set-iteration-order effects.
Answer in Markdown with exactly these level-1 headings, which are parsed automatically:
# Analysis
your step-by-step reasoning
# Generated program
your program in one ```python code block
# Diverging input example
the keyword arguments of the entry point as a Python dict literal in one ```python code block, e.g.
```python
{{"a": "foo", "b": 42}}
```
Do not write the expected outputs."""

ALICE_EQUIVALENT_SYSTEM = f"""You are an expert Python programmer playing a game about program semantics.
{INEQUIVALENCE}
Given a Python program and its entry point function, rewrite it into a program that IS semantically equivalent to it:
for every input it must return an equal value or raise the same exception, and halt exactly when the original
halts. Make it look as different as you can (other names, other control flow, other idioms, other helper
functions), so that a reader cannot tell from its surface that the two are equivalent. Keep the name and the
signature of the entry point unchanged. Do not change what it does on any input, including unusual ones: empty
containers, zero, negative numbers, duplicates, very long inputs.
Return values and exceptions must be deterministic: no randomness, time, or set-iteration-order effects.
Answer in Markdown with exactly these level-1 headings, which are parsed automatically:
# Analysis
your step-by-step reasoning about why the rewrite is equivalent
# Generated program
your program in one ```python code block
Do not write inputs or expected outputs."""

BOB_SYSTEM = f"""You are an expert Python programmer playing a game about program semantics.
{INEQUIVALENCE}
You are given two programs with the same entry point function. Decide whether they are equivalent; if they are
not, give a diverging input.
Answer in Markdown with exactly these level-1 headings, which are parsed automatically:
# Analysis
your step-by-step reasoning
# Equivalent?
Yes or No
# Diverging input example
if not equivalent, the keyword arguments of the entry point as a Python dict literal in one ```python code block
Do not write the expected outputs."""

ALICE_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "analysis": {"type": "string"},
        "program": {"type": "string", "description": "the complete non-equivalent program"},
        "diverging_input": {"type": "string", "description": "a Python dict literal of keyword arguments"},
    },
    "required": ["analysis", "program", "diverging_input"],
    "additionalProperties": False,
}

ALICE_EQUIVALENT_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "analysis": {"type": "string"},
        "program": {"type": "string", "description": "the complete equivalent program"},
    },
    "required": ["analysis", "program"],
    "additionalProperties": False,
}

BOB_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "analysis": {"type": "string"},
        "equivalent": {"type": "boolean"},
        "diverging_input": {"type": ["string", "null"], "description": "a Python dict literal, or null"},
    },
    "required": ["analysis", "equivalent", "diverging_input"],
    "additionalProperties": False,
}


def _fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def alice_messages(program: str, entry_point: str, difficulty: int | str | None) -> list[dict]:
    """``difficulty`` None or "Any" leaves it unspecified (the paper's "Difficulty level: Any"): the prompt of an
    example whose answer is the difficulty must not already say it."""
    if difficulty is None or difficulty == "Any":
        difficulty = "Any"
    elif isinstance(difficulty, str) or not 0 <= difficulty <= 10:
        raise ValueError(f"difficulty must be 0..10 or Any, got {difficulty!r}")
    user = f"Difficulty level: {difficulty}\nEntry point function: {entry_point}\n\n{_fence(program)}"
    return [{"role": "system", "content": ALICE_SYSTEM}, {"role": "user", "content": user}]


def alice_equivalent_messages(program: str, entry_point: str) -> list[dict]:
    """No difficulty: the rewrite has one job (look different, behave the same); its difficulty is measured later,
    by how often evaluators call it equivalent."""
    user = f"Entry point function: {entry_point}\n\n{_fence(program)}"
    return [{"role": "system", "content": ALICE_EQUIVALENT_SYSTEM}, {"role": "user", "content": user}]


def bob_messages(program_a: str, program_b: str, entry_point: str) -> list[dict]:
    user = (f"Entry point function: {entry_point}\n\n# Program A\n{_fence(program_a)}\n\n"
            f"# Program B\n{_fence(program_b)}")
    return [{"role": "system", "content": BOB_SYSTEM}, {"role": "user", "content": user}]


def render_alice(analysis: str, program: str, diverging_input: str) -> str:
    """An answer in Alice's format (fixtures, few-shot examples, SFT targets)."""
    return (f"# Analysis\n{analysis.strip()}\n\n# Generated program\n{_fence(program)}\n\n"
            f"# Diverging input example\n{_fence(diverging_input)}\n")


def render_alice_equivalent(analysis: str, program: str) -> str:
    """An answer in the equivalent-rewrite format (fixtures, few-shot examples, SFT targets)."""
    return f"# Analysis\n{analysis.strip()}\n\n# Generated program\n{_fence(program)}\n"


def render_bob(analysis: str, equivalent: bool, diverging_input: str | None) -> str:
    text = f"# Analysis\n{analysis.strip()}\n\n# Equivalent?\n{'Yes' if equivalent else 'No'}\n"
    if diverging_input is not None:
        text += f"\n# Diverging input example\n{_fence(diverging_input)}\n"
    return text
