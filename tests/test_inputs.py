from __future__ import annotations

import ast

import pytest

from sinq.game.inputs import InputError, parse_input


def test_json_object_and_python_literal_are_accepted() -> None:
    assert parse_input({"x": [1, 2]}).value == {"x": [1, 2]}
    assert parse_input('{"x": [1, 2]}').value == {"x": [1, 2]}
    parsed = parse_input("{'x': (1, 2), 's': {3}, 'b': b'\\x00', 'c': 1+2j, 'n': None}")
    assert ast.literal_eval(parsed.literal) == parsed.value
    assert parsed.value["x"] == (1, 2)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("__import__('os').system('id')", "input_not_literal"),
        ("{'x': f(1)}", "input_not_literal"),
        ("[1, 2]", "input_not_dict"),
        ({"1x": 1}, "input_not_dict"),
        ({"x": float("nan")}, "input_not_literal"),
        ({"x": object()}, "input_not_literal"),
        ("{" * 500 + "}" * 500, "input_not_literal"),
        ("{'x': '" + "a" * 3000 + "'}", "input_too_large"),
    ],
)
def test_bad_inputs_are_rejected_with_a_reason(raw: object, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_input(raw, max_bytes=2048)
    assert caught.value.reason == reason
