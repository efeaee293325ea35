"""The game's rules from hand-made fixtures: prompts, parsing (Alice and Bob), difficulty."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sinq.game.difficulty import difficulty, label
from sinq.game.parsing import merge_answers, parse_alice, parse_bob
from sinq.game.prompts import (
    ALICE_JSON_SCHEMA,
    ALICE_PROMPT_VERSION,
    alice_messages,
    bob_messages,
    render_alice,
    render_bob,
)

ORIGINAL = "def add(a, b):\n    return a + b\n"
VARIANT = "def add(a, b):\n    if a == 3:\n        return a - b\n    return a + b\n"


def alice(text: str, finish_reason: str | None = None):
    return parse_alice(text, ORIGINAL, "add", finish_reason)


def test_round_trip_through_the_prompt_format() -> None:
    parsed = alice(render_alice("because", VARIANT, "{'a': 3, 'b': 1}"))
    assert (parsed.program, parsed.input, parsed.reason) == (VARIANT, "{'a': 3, 'b': 1}", None)
    answer = parse_bob(render_bob("hmm", False, "{'a': 3, 'b': 1}"))
    assert (answer.input, answer.equivalent, answer.reason) == ("{'a': 3, 'b': 1}", False, None)


def test_prompts_carry_the_rules() -> None:
    system, user = alice_messages(ORIGINAL, "add", 7)
    assert "# Generated program" in system["content"] and "# Diverging input example" in system["content"]
    assert "Difficulty level: 7" in user["content"] and "Entry point function: add" in user["content"]
    assert "# Equivalent?" in bob_messages(ORIGINAL, VARIANT, "add")[0]["content"]
    assert ALICE_PROMPT_VERSION and set(ALICE_JSON_SCHEMA["required"]) == {"analysis", "program", "diverging_input"}
    with pytest.raises(ValueError):
        alice_messages(ORIGINAL, "add", 11)


@pytest.mark.parametrize("fence", ["```py", "```python3", "```", "```Python", "~~~python"])
def test_fence_variants(fence: str) -> None:
    close = "~~~" if fence.startswith("~") else "```"
    text = (f"# Analysis\nx\n# Generated program\n{fence}\n{VARIANT}{close}\n# Diverging input example\n"
            f"{fence}\n{{'a': 3, 'b': 1}}\n{close}\n")
    parsed = alice(text)
    assert parsed.reason is None and parsed.program == VARIANT


@pytest.mark.parametrize("heading", ["## Generated program", "# **Generated Program**", "### generated program:",
                                     "**Generated program**\n", "# Step 2: the modified code"])
def test_heading_variants_and_missing_headings(heading: str) -> None:
    text = (f"# Analysis\nthinking\n\n{heading}\n\n```python\n{VARIANT}```\n\n## *Diverging input example*\n"
            "```python\n{'a': 3, 'b': 1}\n```\n")
    parsed = alice(text)
    assert (parsed.reason, parsed.program, parsed.input) == (None, VARIANT, "{'a': 3, 'b': 1}")


def test_no_headings_at_all_still_parses() -> None:
    text = f"Here is my program:\n```python\n{VARIANT}```\nand the input:\n```python\n{{'a': 3, 'b': 1}}\n```"
    assert alice(text).reason is None


def test_analysis_code_does_not_win_over_the_generated_program() -> None:
    text = (f"# Analysis\n```python\n{ORIGINAL}```\n# Generated program\n```python\n{VARIANT}```\n"
            "# Diverging input example\n```python\n{'a': 3, 'b': 1}\n```")
    assert alice(text).program == VARIANT


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", None, "empty_response"),
        ("# Analysis\nI refuse.", None, "no_program"),
        (f"# Generated program\n```python\n{VARIANT}```\n", None, "no_input"),
        (f"# Generated program\n```python\n{VARIANT}```\n# Diverging input example\n```python\n{{'a': 3,",
         None, "truncated"),
        ("# Analysis\nlong...\n# Generated program\n```python\ndef add(a, b):\n    ret", "length", "truncated"),
        ("# Generated program\n```python\ndef add(a, b)\n    return a\n```\n# Diverging input example\n"
         "```python\n{'a': 1, 'b': 2}\n```", None, "syntax_error"),
        ("# Generated program\n```python\ndef plus(a, b):\n    return a\n```\n# Diverging input example\n"
         "```python\n{'a': 1, 'b': 2}\n```", None, "no_entry_point"),
        ("# Generated program\n```python\ndef add(a, b, c=0):\n    return a\n```\n# Diverging input example\n"
         "```python\n{'a': 1, 'b': 2}\n```", None, "signature_changed"),
        (f"# Generated program\n```python\n{VARIANT}```\n# Diverging input example\n```python\n"
         "{'a': int('3'), 'b': 1}\n```", None, "input_not_literal"),
        (f"# Generated program\n```python\n{VARIANT}```\n# Diverging input example\n```python\n"
         "{'a': 3, 'c': 1}\n```", None, "input_does_not_bind"),
        (f"# Generated program\n```python\n{VARIANT}```\n# Diverging input example\n```python\n"
         "add(3, 1)\n```", None, "input_not_literal"),
    ],
)
def test_alice_reason_codes(text: str, finish: str | None, reason: str) -> None:
    assert alice(text, finish).reason == reason


def test_bob_claims_and_answers() -> None:
    assert parse_bob("# Analysis\nsame\n# Equivalent?\nYes\n").reason == "claims_equivalent"
    assert parse_bob("# Analysis\nsame\n# Equivalent?\n**Yes**, they are.\n").equivalent is True
    no_input = parse_bob("# Equivalent?\nNo\n")
    assert (no_input.equivalent, no_input.reason) == (False, "no_input")
    answer = parse_bob("# Equivalent?\nNo, not equivalent\n# Diverging input example\n```\n{'a': 3, 'b': 1}\n```")
    assert (answer.input, answer.equivalent) == ("{'a': 3, 'b': 1}", False)
    assert parse_bob("nothing useful").reason == "no_input"


def test_identical_bob_inputs_merge_with_a_weight() -> None:
    answers = [parse_bob(render_bob("", False, text)) for text in
               ("{'a': 3, 'b': 1}", '{"a": 3, "b": 1}', "{'b': 1, 'a': 3}", "{'a': 4, 'b': 1}")]
    answers.append(parse_bob("# Equivalent?\nYes"))
    assert merge_answers(answers) == [("{'a': 3, 'b': 1}", 2), ("{'b': 1, 'a': 3}", 1), ("{'a': 4, 'b': 1}", 1)]


@pytest.mark.parametrize(
    ("n", "successes", "expected"),
    [(8, 7, 1), (20, 19, 1), (10, 2, 8), (5, 0, 10), (5, 5, 0), (3, 1, 7), (40, 37, 1), (4, 2, 5), (6, 5, 2)],
)
def test_difficulty_is_exact_and_rounds_half_up(n: int, successes: int, expected: int) -> None:
    assert difficulty(n, successes) == expected


def test_every_answer_counts_in_the_denominator() -> None:
    outcome = label([True, False, False, False, False], evaluator="bob-v0")
    assert (outcome.difficulty, outcome.n_answers, outcome.n_failures, outcome.evaluator) == (8, 5, 4, "bob-v0")
    with pytest.raises(ValueError):
        difficulty(0, 0)


def test_parse_cli_on_transcripts_and_texts(tmp_path: Path) -> None:
    user = f"Difficulty level: 2\nEntry point function: add\n\n```python\n{ORIGINAL}```"
    lines = [
        json.dumps({"messages": [{"role": "user", "content": user},
                                 {"role": "assistant", "content": render_alice("a", VARIANT, "{'a': 3, 'b': 1}")}]}),
        json.dumps({"text": "# Generated program\n```python\ndef add(a):\n    return a\n```\n"
                            "# Diverging input example\n```python\n{'a': 1}\n```",
                    "original": ORIGINAL, "entry_point": "add"}),
        "{not json",
    ]
    source = tmp_path / "responses.jsonl"
    source.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "parse", "alice", str(source), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["line"], r["reason"]) for r in rows] == [(1, None), (2, "signature_changed"), (3, "malformed_line")]
    assert rows[0]["program"] == VARIANT and rows[0]["input"] == "{'a': 3, 'b': 1}"
    assert set(rows[0]) >= {"line", "program", "input", "equivalent", "reason"}


def test_the_papers_real_transcripts_parse() -> None:
    reference = Path(__file__).resolve().parent / "data" / "alice_transcripts_sample.jsonl"  # vendored: NOTICE.md
    from sinq.game.transcripts import parse_line

    rows = [parse_line("alice", n, raw) for n, raw in enumerate(reference.read_bytes().splitlines(), start=1)]
    assert len(rows) == 20
    assert sum(row["reason"] is None for row in rows) >= 18
