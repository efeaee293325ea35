"""Problem sources from real data (HumanEval from its package, hand-made MBPP-format files, datasets-loaded files),
validated in the real sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sinq.sources.loaders import ColumnMap, SourceError, load
from sinq.sources.problem import find_entry_point
from sinq.tasks.validation import summary, validate

MBPP_ROWS = [
    {"task_id": 1, "text": "Lobb number", "code": "def binomial(n, k):\r\n    from math import comb\r\n"
     "    return comb(n, k)\r\ndef lobb_num(n, m):\r\n    return int((2 * m + 1) * binomial(2 * n, m + n) / "
     "(m + n + 1))\r\n", "test_setup_code": "",
     "test_list": ["assert int(lobb_num(5, 3)) == 35", "assert int(lobb_num(3, 2)) == 5"],
     "challenge_test_list": []},
    {"task_id": 2, "text": "wrong", "code": "def add(a, b):\n    return a - b\n", "test_setup_code": "",
     "test_list": ["assert add(1, 2) == 3"], "challenge_test_list": []},
    {"task_id": 3, "text": "setup", "code": "def scaled(x):\n    return x * FACTOR\n",
     "test_setup_code": "FACTOR = 3", "test_list": ["assert scaled(2) == 6"], "challenge_test_list": []},
    {"task_id": 4, "text": "duplicate of 2", "code": "def add(a, b):\n    # same program\n    return a - b\n",
     "test_setup_code": "", "test_list": ["assert add(1, 2) == -1"], "challenge_test_list": []},
    {"task_id": 5, "text": "no tests", "code": "def f(x):\n    return x\n", "test_list": []},
]


def write_jsonl(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n" + extra)
    return path


def test_entry_point_is_what_the_tests_call_not_the_wrapper() -> None:
    code = "def helper(x):\n    return x\ndef lobb_num(n):\n    return helper(n)\n"
    assert find_entry_point(code, "assert int(lobb_num(3)) == 3\nassert set(lobb_num(1)) == {1}") == "lobb_num"


def test_humaneval_loads_and_validates_all_164(local_backend) -> None:
    problems = load("humaneval")
    assert len(problems) == 164
    assert problems[0].entry_point == "has_close_elements"
    assert sum(bool(p.seed_inputs) for p in problems) >= 150
    validate(problems, local_backend)
    result = summary(problems)
    assert result["valid"] == 164, result


def test_mbpp_file_normalises_validates_and_explains(tmp_path: Path, local_backend) -> None:
    path = write_jsonl(tmp_path / "mbpp.jsonl", MBPP_ROWS, extra="{broken\n")
    problems = load(f"mbpp:{path}")
    by_id = {p.source_id: p for p in problems}
    assert "\r" not in by_id["1"].code
    assert by_id["1"].entry_point == "lobb_num"
    assert by_id["1"].seed_inputs == ["{'n': 5, 'm': 3}", "{'n': 3, 'm': 2}"]
    assert by_id["4"].reason == "duplicate"
    assert by_id["5"].reason == "missing_field"
    assert any(p.reason == "malformed_row" for p in problems)
    validate(problems, local_backend)
    assert by_id["1"].reason is None and by_id["3"].reason is None
    assert by_id["2"].reason == "fails_own_tests:AssertionError"
    result = summary(problems)
    assert (result["loaded"], result["valid"]) == (6, 2)


def test_parquet_and_datasets_sources_take_the_same_path(tmp_path: Path) -> None:
    rows = MBPP_ROWS[:3]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mbpp.parquet")
    from_parquet = load(f"mbpp:{tmp_path / 'mbpp.parquet'}")
    assert [(p.source_id, p.entry_point) for p in from_parquet] == [("1", "lobb_num"), ("2", "add"), ("3", "scaled")]
    renamed = [{"id": r["task_id"], "solution": r["code"], "asserts": r["test_list"], "prompt": r["text"]}
               for r in rows]
    folder = tmp_path / "hf"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", renamed)
    columns = ColumnMap(task_id="id", code="solution", tests="asserts", text="prompt", setup=None,
                        challenge_tests=None)
    from_hf = load(f"hf:{folder}:train", columns)
    assert [(p.source, p.entry_point) for p in from_hf] == [("hf:" + str(folder), "lobb_num"),
                                                             ("hf:" + str(folder), "add"),
                                                             ("hf:" + str(folder), "scaled")]


def test_unknown_source_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="unknown source"):
        load("ftp:somewhere")
    with pytest.raises(SourceError, match="does not exist"):
        load("mbpp:/nonexistent.jsonl")


def test_sources_validate_cli(tmp_path: Path, local_backend) -> None:
    path = write_jsonl(tmp_path / "mbpp.jsonl", MBPP_ROWS)
    done = subprocess.run([sys.executable, "-m", "sinq.cli", "sources", "validate", "--source", f"mbpp:{path}",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"loaded": 5, "valid": 2, "invalid": 3,
                      "reasons": {"fails_own_tests:AssertionError": 1, "duplicate": 1, "missing_field": 1}}


def test_held_out_split_is_deterministic_near_its_share_and_keeps_named_splits(tmp_path: Path) -> None:
    from sinq.sources.config import SplitConfig
    from sinq.sources.splits import split_of

    first, again = load("humaneval"), load("humaneval")
    splits = [p.split for p in first]
    assert splits == [p.split for p in again] and set(splits) == {"train", "held_out"}
    assert 0.15 <= splits.count("held_out") / len(splits) <= 0.25  # 39 of 164 with the default salt
    assert [p.source_id for p in first if p.split == "held_out"][:3] == ["HumanEval/4", "HumanEval/8",
                                                                         "HumanEval/9"]
    assert all(split_of(p.problem_id) == p.split for p in first)
    other = [p.split for p in load("humaneval", splits=SplitConfig(salt="another draw"))]
    assert other != splits and 0.1 <= other.count("held_out") / len(other) <= 0.3
    assert {p.split for p in load("humaneval", splits=SplitConfig(shares={"humaneval": 0.0}))} == {"train"}
    assert {p.split for p in load("humaneval", splits=SplitConfig(held_out_share=1.0))} == {"held_out"}

    named = [{**row, "split": split} for row, split in zip(MBPP_ROWS[:3], ["test", "validation", "train"],
                                                             strict=True)]
    path = write_jsonl(tmp_path / "named.jsonl", named)
    loaded = load(f"mbpp:{path}", ColumnMap(split="split"), splits=SplitConfig(held_out_share=1.0))
    assert [p.split for p in loaded] == ["test", "validation", "held_out"]


def test_mbpp_official_split_holds_out_test_and_validation_by_task_id(tmp_path: Path) -> None:
    """The paper's protocol: MBPP's published split (prompt 1-10, test 11-510, validation 511-600, train 601-974)
    when asked for; the held-out rule divides only the train rows (none with share 0)."""
    from sinq.sources.config import SplitConfig

    row = MBPP_ROWS[0]
    rows = [{**row, "task_id": task_id, "code": row["code"] + f"\n# {task_id}\n"} for task_id in (5, 20, 510, 511,
                                                                                                   600, 601, 974)]
    path = write_jsonl(tmp_path / "mbpp.jsonl", rows)
    official = load(f"mbpp:{path}", splits=SplitConfig(mbpp_official=True, held_out_share=0.0))
    assert [p.split for p in official] == ["prompt", "test", "test", "validation", "validation", "train", "train"]
    plain = load(f"mbpp:{path}", splits=SplitConfig(held_out_share=0.0))
    assert {p.split for p in plain} == {"train"}
