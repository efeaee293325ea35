"""Evaluation items and decontamination: what an evaluation measures on never trains, and when a set did touch an
item the evaluation is told.

Items (``eval_items``, keyed by a hash of suite and text) are the held-out problems (``register_held_out``, run
before every build) and benchmark files (``register_benchmark``; ``[training.decontamination] benchmark_files``).
A program overlaps an item when their normalised AST hashes are equal (locals, layout, comments and docstrings do
not count) or when enough of their normalised 13-gram token streams are shared, counted both ways so that a copy
inside a larger program is caught too. Imports and annotations are left out of the token stream first: typed
signatures such as ``(strings: List[str], prefix: str) -> List[str]`` are boilerplate shared by unrelated problems.
Programs shorter than n tokens are one gram of themselves; an item that short also matches when its whole token
run appears inside the program. ``contaminated_items`` answers the evaluation's question: which of these items did
a registered training set touch (its problems, or a program of its rows matching)?"""

from __future__ import annotations

import ast
import csv
import json
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sinq.game import syntax
from sinq.game.similarity import ast_hash, code_tokens, ngrams
from sinq.sources.config import SplitConfig
from sinq.sources.splits import HELD_OUT, split_of
from sinq.training.config import DecontaminationConfig
from sinq.warehouse import queries
from sinq.warehouse.records import content_id
from sinq.warehouse.store import Warehouse

HELD_OUT_SUITE = "held_out"


@dataclass(frozen=True)
class EvalItem:
    item_id: str
    suite: str
    text: str
    origin: str | None = None
    problem_id: str | None = None
    ast_hash: str | None = None


@dataclass(frozen=True)
class Hit:
    """A program overlapping an item: ``how`` is ``ast`` (same normalised AST) or ``ngram`` (shared share)."""

    item_id: str
    how: str
    score: float


def _hash(code: str) -> str | None:
    """The normalised AST hash, quietly: benchmark code is full of escapes that Python warns about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        return ast_hash(code)


def make_item(suite: str, text: str, origin: str | None = None, problem_id: str | None = None) -> EvalItem:
    return EvalItem(content_id("eval_item", suite, text), suite, text, origin, problem_id, _hash(text))


def register_items(warehouse: Warehouse, items: Iterable[EvalItem]) -> int:
    """Store items (a known item is a no-op); returns how many were new."""
    now = datetime.now(UTC)
    rows = [{"item_id": i.item_id, "suite": i.suite, "origin": i.origin, "problem_id": i.problem_id, "text": i.text,
             "ast_hash": i.ast_hash, "created_at": now} for i in items if i.text.strip()]
    return warehouse.store({"eval_items": rows})["eval_items"] if rows else 0


def is_held_out(stored: str | None, problem_id: str, source: str | None, split: SplitConfig,
                held_out_splits: Iterable[str]) -> bool:
    """Held out by the stored split or by the current rule: a warehouse written before the rule stored ``train``."""
    return (stored or "train") in set(held_out_splits) or split_of(problem_id, split, source) == HELD_OUT


def _program(code: str, setup: str | None) -> str:
    """What a pair's original is: setup code, then the solution (``Problem.program``)."""
    return f"{setup}\n{code}" if (setup or "").strip() else code


def register_held_out(warehouse: Warehouse, split: SplitConfig | None = None,
                      held_out_splits: Iterable[str] = ("test", "validation", "held_out"),
                      suite: str = HELD_OUT_SUITE) -> int:
    """Every held-out problem of the warehouse as an item (its program: setup code, then the solution)."""
    split = split or SplitConfig()
    held_out_splits = list(held_out_splits)
    known = queries.item_problem_ids(warehouse, suite)
    items = []
    for p in queries.all_problems(warehouse):
        if p["problem_id"] in known or not is_held_out(p["split"], p["problem_id"], p["source"], split,
                                                        held_out_splits):
            continue
        items.append(make_item(suite, _program(p["code"], p["setup_code"]), f"{p['source']}:{p['source_id']}",
                               p["problem_id"]))
    return register_items(warehouse, items)


def _csv_text(row: dict) -> str:
    """The prompt, completed by the right class when the file has them (the identifier-swap format)."""
    prompt = row.get("prompt") or ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
            classes = syntax.literal_eval(row["classes"])
        return prompt + classes[int(row["answer_index"])]
    except (KeyError, ValueError, SyntaxError, TypeError, IndexError):
        return prompt


def _record_text(row: dict) -> str:
    """HumanEval (prompt + canonical_solution), MBPP (code) and similar rows."""
    if row.get("canonical_solution") is not None:
        return str(row.get("prompt") or "") + str(row["canonical_solution"])
    for key in ("code", "solution", "completion", "prompt", "text"):
        if isinstance(row.get(key), str) and row[key].strip():
            return row[key]
    return ""


def benchmark_items(path: Path, suite: str | None = None) -> list[EvalItem]:
    """The items of a benchmark file: JSONL/JSON/Parquet records, CSV rows with a ``prompt`` column, a .py file."""
    path = Path(path)
    suite = suite or path.stem
    if path.suffix == ".py":
        return [make_item(suite, path.read_text(), str(path))]
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            return [make_item(suite, _csv_text(row), f"{path.name}:{number}")
                    for number, row in enumerate(csv.DictReader(handle), start=1)]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
    elif path.suffix == ".json":
        loaded = json.loads(path.read_text())
        records = loaded if isinstance(loaded, list) else [loaded]
    else:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [make_item(suite, _record_text(r), f"{path.name}:{r.get('task_id', number)}")
            for number, r in enumerate(records, start=1) if isinstance(r, dict)]


def register_benchmark(warehouse: Warehouse, path: Path, suite: str | None = None) -> int:
    return register_items(warehouse, benchmark_items(path, suite))


def load_items(warehouse: Warehouse, item_ids: list[str] | None = None) -> list[EvalItem]:
    return [EvalItem(r["item_id"], r["suite"], r["text"], r["origin"], r["problem_id"], r["ast_hash"])
            for r in queries.eval_items(warehouse, item_ids)]


def _bare(code: str) -> str:
    """The program without imports and annotations (boilerplate that unrelated programs share)."""
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code
    tree.body = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))] or [ast.Pass()]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg,
                        arguments.kwarg]:
                if arg is not None:
                    arg.annotation = None
    try:
        return syntax.unparse(tree)
    except (ValueError, RecursionError):
        return code


class EvalIndex:
    """Every item's AST hash and n-grams, to ask of one program which items it overlaps."""

    def __init__(self, items: Iterable[EvalItem], n: int = 13) -> None:
        self.n = n
        self.items = {i.item_id: i for i in items}
        self.by_hash: dict[str, list[str]] = defaultdict(list)
        self.by_gram: dict[tuple[str, ...], list[str]] = defaultdict(list)
        self.short: dict[int, dict[tuple[str, ...], list[str]]] = defaultdict(lambda: defaultdict(list))
        self.size: dict[str, int] = {}
        for item in self.items.values():
            if item.ast_hash:
                self.by_hash[item.ast_hash].append(item.item_id)
            tokens = self.tokens(item.text)
            grams = ngrams(tokens, n)
            self.size[item.item_id] = len(grams)
            for gram in grams:
                self.by_gram[gram].append(item.item_id)
            if 0 < len(tokens) < n:
                self.short[len(tokens)][tuple(tokens)].append(item.item_id)
        self._memo: dict[str, list[Hit]] = {}

    def tokens(self, code: str) -> list[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
            return code_tokens(_bare(code))

    def __len__(self) -> int:
        return len(self.items)

    def hits(self, code: str) -> list[Hit]:
        """Every overlap of the program with an item, strongest first: AST matches, then n-gram shares (> 0); an
        item can appear twice (both ways)."""
        if code in self._memo:
            return self._memo[code]
        digest = _hash(code)
        found = [Hit(item_id, "ast", 1.0) for item_id in (self.by_hash.get(digest, []) if digest else [])]
        tokens = self.tokens(code)
        grams = ngrams(tokens, self.n)
        shared = Counter(item_id for gram in grams for item_id in self.by_gram.get(gram, ()))
        for length, runs in self.short.items():
            for run in ngrams(tokens, length) if len(tokens) >= length else ():
                for item_id in runs.get(run, ()):
                    shared[item_id] = max(shared[item_id], self.size[item_id])
        for item_id, count in shared.items():
            score = max(count / len(grams), count / self.size[item_id]) if grams else 0.0
            found.append(Hit(item_id, "ngram", min(score, 1.0)))
        result = sorted(found, key=lambda h: (h.how != "ast", -h.score, h.item_id))
        self._memo[code] = result
        return result

    def contaminating(self, code: str, config: DecontaminationConfig) -> Hit | None:
        """The strongest hit that removes the program under ``config``, or None."""
        for hit in self.hits(code):
            if hit.how == "ast" and config.ast_match:
                return hit
            if hit.how == "ngram" and hit.score >= config.max_ngram_overlap:
                return hit
        return None


def prepare(warehouse: Warehouse, config: DecontaminationConfig, split: SplitConfig | None = None,
            held_out_splits: Iterable[str] = ("test", "validation", "held_out")) -> EvalIndex:
    """Register what the config names (held-out problems, benchmark files), then index every item."""
    if config.register_held_out:
        register_held_out(warehouse, split, held_out_splits)
    for path in config.benchmark_files:
        register_benchmark(warehouse, path)
    return EvalIndex(load_items(warehouse), config.ngram)


def _snapshot_pairs(path: str | None) -> list[str] | None:
    """The pair ids a snapshot's Parquet holds; None when the file is gone."""
    if not path or not (Path(path) / "train.parquet").exists():
        return None
    import pyarrow.parquet as pq

    table = pq.read_table(Path(path) / "train.parquet")
    return sorted(set(table.column("pair_id").to_pylist())) if "pair_id" in table.column_names else []


def _snapshot_programs(warehouse: Warehouse, pair_ids: list[str] | None, problem_ids: list[str]) -> list[str]:
    """Original and variant code of a snapshot's pairs (all pairs of its problems when its file is gone)."""
    return sorted(queries.pair_codes(warehouse, pair_ids, problem_ids))


def contaminated_items(warehouse: Warehouse, item_ids: list[str] | None = None, problem_ids: list[str] | None = None,
                       snapshot_ids: list[str] | None = None, config: DecontaminationConfig | None = None
                       ) -> list[dict]:
    """Which of these evaluation items (by id, or the items and problems of these problem ids) a registered training
    set touched: ``how`` is ``problem`` (the item's problem is among the set's problems), ``ast`` or ``ngram`` (a
    program of the set's rows overlaps the item, as decontamination measures it). One row per (item, set), the
    strongest reason; an evaluation reports its figures on these items as contaminated. A problem id without a
    registered item is checked through its stored program (``item_id`` None)."""
    config = config or DecontaminationConfig()
    items = load_items(warehouse, item_ids) if item_ids is not None else []
    if problem_ids is not None:
        wanted = set(problem_ids)
        items += [i for i in load_items(warehouse) if i.problem_id in wanted and i.item_id not in
                  {j.item_id for j in items}]
        covered = {i.problem_id for i in items}
        rows = queries.problem_programs(warehouse, sorted(wanted - covered))
        items += [EvalItem(f"problem:{r['problem_id']}", "", _program(r["code"], r["setup_code"]), None,
                           r["problem_id"], _hash(_program(r["code"], r["setup_code"]))) for r in rows]
    if not items:
        return []
    index = EvalIndex(items, config.ngram)
    sets = [(s["snapshot_id"], s["problem_ids"], s["path"]) for s in queries.training_sets(warehouse, snapshot_ids)]
    strength = {"problem": 0, "ast": 1, "ngram": 2}
    found: dict[tuple[str, str], dict] = {}
    for snapshot_id, stored_problems, path in sets:
        touched = set(json.loads(stored_problems or "[]"))
        candidates: dict[str, tuple[str, float]] = {}
        for item in items:
            if item.problem_id and item.problem_id in touched:
                candidates[item.item_id] = ("problem", 1.0)
        for code in _snapshot_programs(warehouse, _snapshot_pairs(path), sorted(touched)):
            for hit in index.hits(code):
                if hit.how == "ngram" and hit.score < config.max_ngram_overlap:
                    continue
                best = candidates.get(hit.item_id)
                if best is None or (strength[hit.how], -hit.score) < (strength[best[0]], -best[1]):
                    candidates[hit.item_id] = (hit.how, hit.score)
        for item_id, (how, score) in candidates.items():
            item = index.items[item_id]
            found[(item_id, snapshot_id)] = {
                "item_id": None if item_id.startswith("problem:") else item_id, "suite": item.suite or None,
                "problem_id": item.problem_id, "snapshot_id": snapshot_id, "how": how, "score": round(score, 4)}
    return sorted(found.values(), key=lambda r: (r["snapshot_id"], r["problem_id"] or "", r["item_id"] or ""))
