"""The ``equivalence`` suite (issue 15): program pairs labelled equivalent or inequivalent, the evaluator asked
"Equivalent?" on each, its "Yes"/"No" the prediction. EquiBench shows that telling the two apart is where models
fail; this suite measures our evaluator on it, false alarms included.

Items come from local files (JSONL, a JSON array such as EquiBench's ``pairs.json`` export, Parquet, or CSV, read
through ``[eval.equivalence] columns`` and its label values) and from our own held-out pairs: `freeze` copies
standing equivalent pairs (view ``equivalent_pairs``) and verified inequivalent ones (``verified_pairs``) of
held-out problems into a content-hashed set (``eval_sets`` with suite ``equivalence``; an equivalent pair's
``diverging_input`` is stored empty, which is how its kind is read back). A row that does not fit the column map
stops the run naming its file and line, as in the classify suite.

Scoring, one query per answer (every answer in the denominator):

- the prediction is the answer's claim; an answer whose input diverges in the sandbox is a "No" whatever it
  claimed (as the nightly scores it); no parsable claim is wrong on both classes;
- every claimed input is settled in the sandbox (``agents.play.evaluate``, as in the game suite). A "No" whose input
  diverges on a pair labelled equivalent proves the label wrong: the item is relabelled inequivalent for the run
  (counted in ``detail.relabelled``) and every answer on it is scored against that;
- on an inequivalent pair a "No" is right whether or not its input diverges (a classification benchmark);
  ``witnessed_rate`` is the stricter game figure, a "No" whose input does diverge.

Metrics, each a rate with its Wilson interval: accuracy, recall of each class, false-alarm rate (a "No" on an
equivalent pair), miss rate (a "Yes" on an inequivalent one), witnessed rate, answered share, and accuracy per
source."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sinq.agents.base import EvaluatorRequest
from sinq.agents.play import evaluate as play_evaluate
from sinq.evals.classify import _rows as data_rows
from sinq.evals.classify import label_key
from sinq.evals.common import Clock, EvalError, EvalRun, Item, Result, rate
from sinq.evals.config import EquivalenceEvalConfig, EvalConfig
from sinq.game import syntax
from sinq.game.hashing import json_sha256
from sinq.game.scoring import score
from sinq.sandbox.pool import WorkerPool
from sinq.sources.config import SplitConfig
from sinq.training.decontam import contaminated_items, is_held_out, make_item, register_items
from sinq.warehouse.evals import held_out_candidates, held_out_equivalent_candidates, list_sets, read_set, store_set
from sinq.warehouse.store import Warehouse

SUITE = "equivalence"
SUITE_VERSION = "1"
MODE = "evaluator"
HELD_OUT_SPLITS = ("test", "validation", "held_out")
KINDS = ("equivalent", "inequivalent")


def pair_text(program_1: str, program_2: str) -> str:
    """What an item is registered as (decontamination counts n-grams both ways, so a training row holding either
    program is caught): both programs, so that two pairs sharing one program stay two items."""
    return f"{program_1.rstrip()}\n\n\n{program_2.rstrip()}\n"


@dataclass
class PairItem:
    program_1: str
    program_2: str
    entry_point: str
    kind: str
    """equivalent | inequivalent, as labelled (a run may relabel an equivalent item it refutes)."""
    row: str
    label: str
    origin: str
    """file:NAME or warehouse:SET_ID (accuracy is reported per origin too)."""
    seed_inputs: list[str] = field(default_factory=list)
    problem_id: str | None = None
    item: Item = field(init=False)

    def __post_init__(self) -> None:
        self.item = Item(SUITE, pair_text(self.program_1, self.program_2), self.row, problem_id=self.problem_id)


@dataclass
class Loaded:
    items: list[PairItem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    duplicates: int = 0
    conflicting: int = 0
    """Rows whose two programs an earlier row already had (the first kept), and those of them labelled the other
    way."""
    labels: dict[str, int] = field(default_factory=dict)
    set_id: str | None = None

    def add(self, item: PairItem, seen: dict[str, str]) -> None:
        if item.item.item_id in seen:
            self.duplicates += 1
            self.conflicting += seen[item.item.item_id] != item.kind
            return
        seen[item.item.item_id] = item.kind
        self.items.append(item)


# ---- files


def label_of(value: object, config: EquivalenceEvalConfig) -> str | None:
    """equivalent | inequivalent for a label value, None when it is in neither list."""
    key = label_key(value)
    if key in {label_key(v) for v in config.equivalent_labels}:
        return "equivalent"
    if key in {label_key(v) for v in config.inequivalent_labels}:
        return "inequivalent"
    return None


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # programs are longer than csv's 128 KiB default
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        try:
            reader.fieldnames  # noqa: B018 - reads the header, so line_num counts from it
        except csv.Error as exc:
            raise EvalError(f"{path}:1: not valid CSV: {exc}") from exc
        while True:
            start = reader.line_num + 1  # a row's first line: a quoted program spans several
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise EvalError(f"{path}:{start}: not valid CSV: {exc}") from exc
            if None in row:
                raise EvalError(f"{path}:{start}: more fields than the header names")
            yield f"{path}:{start}", row


def _rows(path: Path) -> tuple[str, Iterable[tuple[str, dict]]]:
    if not path.exists():
        raise EvalError(f"{path} does not exist")
    if path.suffix == ".csv":
        return str(path), _csv_rows(path)
    if path.suffix not in (".jsonl", ".json", ".ndjson", ".parquet"):
        raise EvalError(f"{path}: give a .jsonl, .json, .parquet or .csv file")
    return data_rows(str(path))


def _top_level(code: str, place: str, column: str) -> tuple[list[str], set[str]]:
    """(functions defined at the top level, every name bound there) of a program; an EvalError when it is not
    Python (the sandbox and the evaluator's prompt are Python's)."""
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError) as exc:
        raise EvalError(f"{place}: column {column!r} is not a Python program ({type(exc).__name__}: "
                        f"{getattr(exc, 'msg', exc)}, line {getattr(exc, 'lineno', '?')})") from None
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    bound = set(functions) | {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound |= {t.id for t in targets if isinstance(t, ast.Name)}
    return functions, bound


def _entry_point(row: dict, place: str, program_1: str, program_2: str, config: EquivalenceEvalConfig) -> str:
    columns = config.columns
    functions_1, bound_1 = _top_level(program_1, place, columns.program_1)
    functions_2, bound_2 = _top_level(program_2, place, columns.program_2)
    given = row.get(columns.entry_point) if columns.entry_point else None
    if isinstance(given, str) and given.strip():
        name = given.strip()
        if name not in bound_1 or name not in bound_2:
            raise EvalError(f"{place}: entry point {name!r} is not defined at the top level of both programs")
        return name
    common = [f for f in functions_1 if f in set(functions_2)]
    if len(common) != 1:
        found = ", ".join(common) if common else "none"
        raise EvalError(f"{place}: no entry point column and not one top-level function both programs define "
                        f"({found})", hint="name it: [eval.equivalence.columns] entry_point (--entry-point-column)")
    return common[0]


def _literal(value: object, place: str, column: str) -> str:
    if isinstance(value, str):
        try:
            value = syntax.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            try:
                value = json.loads(value)
            except ValueError:
                raise EvalError(f"{place}: column {column!r} holds an input that is not a literal: "
                                f"{value[:80]!r}") from None
    if not isinstance(value, dict):
        raise EvalError(f"{place}: column {column!r} holds an input that is not a dict of keyword arguments")
    literal = repr(value)
    try:
        syntax.literal_eval(literal)
    except (ValueError, SyntaxError):
        raise EvalError(f"{place}: column {column!r} holds an input that is not a Python literal") from None
    return literal


def _inputs(row: dict, place: str, config: EquivalenceEvalConfig) -> list[str]:
    column = config.columns.inputs
    value = row.get(column) if column else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = syntax.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise EvalError(f"{place}: column {column!r} is not a list of inputs") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list | tuple):
        raise EvalError(f"{place}: column {column!r} is not a list of inputs")
    return [_literal(v, place, str(column)) for v in value]


def _file_item(row: dict, place: str, where: str, config: EquivalenceEvalConfig) -> PairItem:
    columns = config.columns
    missing = [c for c in (columns.program_1, columns.program_2, columns.label) if c not in row]
    if missing:
        raise EvalError(f"{place}: no column {', '.join(map(repr, missing))} (the row has "
                        f"{', '.join(map(repr, list(row)[:12]))})",
                        hint="name the columns: [eval.equivalence.columns] (--program-1-column, ...)")
    programs = []
    for column in (columns.program_1, columns.program_2):
        code = row[column]
        if not isinstance(code, str) or not code.strip():
            raise EvalError(f"{place}: column {column!r} is not a non-empty string")
        programs.append(code)
    kind = label_of(row[columns.label], config)
    if kind is None:
        raise EvalError(f"{place}: label {row[columns.label]!r} is in neither class (equivalent: "
                        f"{', '.join(config.equivalent_labels)}; inequivalent: "
                        f"{', '.join(config.inequivalent_labels)})",
                        hint="map it: [eval.equivalence] equivalent_labels / inequivalent_labels (--equivalent, "
                             "--inequivalent)")
    entry_point = _entry_point(row, place, programs[0], programs[1], config)
    ident = row.get(columns.id) if columns.id else None
    short = Path(where).name
    name = f"{short}:{ident}" if ident not in (None, "") else place.replace(where, short, 1)
    return PairItem(programs[0], programs[1], entry_point, kind, name, str(row[columns.label]), f"file:{short}",
                    _inputs(row, place, config))


def load_files(paths: Iterable[Path], config: EquivalenceEvalConfig, loaded: Loaded | None = None,
               limit: int | None = None) -> Loaded:
    """The labelled pairs of each file, in order; a row that does not fit the column map stops the run."""
    loaded = loaded or Loaded()
    seen = {it.item.item_id: it.kind for it in loaded.items}
    for path in paths:
        where, rows = _rows(Path(path))
        before = len(loaded.items)
        for place, row in rows:
            if limit is not None and len(loaded.items) >= limit:
                break
            item = _file_item(row, place, where, config)
            key = label_key(row.get(config.columns.label)) or ""
            loaded.labels[key] = loaded.labels.get(key, 0) + 1
            loaded.add(item, seen)
        if len(loaded.items) == before and (limit is None or before < limit):
            raise EvalError(f"{where} holds no rows")
        loaded.sources.append(where)
    return loaded


# ---- our own held-out pairs


def _order(seed: int, pair_id: str) -> str:
    return hashlib.sha256(f"{seed}\0{pair_id}".encode()).hexdigest()


def freeze(warehouse: Warehouse, config: EquivalenceEvalConfig | None = None, splits: SplitConfig | None = None,
           name: str | None = None, held_out_splits: Iterable[str] = HELD_OUT_SPLITS) -> dict:
    """Freeze the held-out pairs of both kinds into a set (per kind: at most ``freeze_per_problem`` per problem and
    ``freeze_max_pairs`` in all, chosen by a seeded hash) and register its items for decontamination. Problems a
    registered training set touched are left out (counted). The same content freezes to the same set id."""
    config = config or EquivalenceEvalConfig()
    rows = ([r | {"kind": "equivalent", "diverging_input": "", "difficulty": None}
             for r in held_out_equivalent_candidates(warehouse)]
            + [r | {"kind": "inequivalent"} for r in held_out_candidates(warehouse)])
    held = [r for r in rows if is_held_out(r["split"], r["problem_id"], r["source"], splits or SplitConfig(),
                                held_out_splits)]
    if not held:
        raise EvalError(f"no equivalent or verified pair of a held-out problem in {warehouse.path} ({len(rows)} "
                        "unflagged pairs in all)", hint="run `sinq run` first: it plays held-out problems too")
    touched = {h["problem_id"] for h in contaminated_items(warehouse, problem_ids=sorted({r["problem_id"]
                                                                                         for r in held}))
               if h["problem_id"]}
    clean = sorted((r for r in held if r["problem_id"] not in touched),
                   key=lambda r: _order(config.freeze_seed, r["pair_id"]))
    chosen, per_problem, per_kind, seen = [], defaultdict(int), defaultdict(int), set()
    for row in clean:
        item_id = make_item(SUITE, pair_text(row["original_code"], row["variant_code"])).item_id
        kind = row["kind"]
        if (per_problem[(kind, row["problem_id"])] >= config.freeze_per_problem or item_id in seen
                or per_kind[kind] >= config.freeze_max_pairs):
            continue
        per_problem[(kind, row["problem_id"])] += 1
        per_kind[kind] += 1
        seen.add(item_id)
        chosen.append(row | {"item_id": item_id})
    if not chosen:
        raise EvalError(f"every held-out pair's problem is in a training set ({len(touched)} problems): nothing "
                        "clean to freeze")
    chosen.sort(key=lambda r: (r["kind"], r["pair_id"]))
    content = json_sha256([[r["kind"], r["pair_id"], r["original_code"], r["variant_code"], r["entry_point"],
                            r["diverging_input"]] for r in chosen])
    set_id = f"{SUITE}-{content[:12]}"
    problems = {r["problem_id"] for r in chosen}
    detail = {"held_out_pairs": {k: sum(1 for r in held if r["kind"] == k) for k in KINDS},
              "by_kind": {k: per_kind[k] for k in KINDS}, "left_out_trained_problems": len(touched),
              "per_problem": config.freeze_per_problem, "max_pairs_per_kind": config.freeze_max_pairs,
              "seed": config.freeze_seed, "kind_rule": "diverging_input '' = equivalent"}
    pairs = [{**r, "position": i} for i, r in enumerate(chosen)]
    created = store_set(warehouse, {"set_id": set_id, "suite": SUITE, "name": name, "content_hash": content,
                                    "pairs": len(pairs), "problems": len(problems), "detail": detail}, pairs)
    register_items(warehouse, [make_item(SUITE, pair_text(r["original_code"], r["variant_code"]),
                                         f"{SUITE}:{set_id}", r["problem_id"]) for r in chosen])
    return {"set_id": set_id, "content_hash": content, "pairs": len(pairs), "problems": len(problems),
            "created": created, **detail}


def frozen(warehouse: Warehouse, set_id: str = "latest") -> dict:
    """A stored equivalence set (``latest``: the newest); an EvalError saying how to make one when there is none."""
    if set_id == "latest":
        sets = list_sets(warehouse, SUITE)
        if not sets:
            raise EvalError(f"no frozen equivalence set in {warehouse.path}",
                            hint="a run with equivalent and verified pairs of held-out problems first")
        set_id = sets[-1]["set_id"]
    try:
        found = read_set(warehouse, set_id)
    except KeyError:
        raise EvalError(f"no frozen set {set_id!r} in {warehouse.path}", hint="sinq eval sets shows them") from None
    if found["suite"] != SUITE:
        raise EvalError(f"set {set_id!r} is a {found['suite']} set, not an equivalence set")
    return found


def frozen_or_freeze(warehouse: Warehouse, config: EquivalenceEvalConfig, splits: SplitConfig | None,
                     held_out_splits: Iterable[str] = HELD_OUT_SPLITS) -> dict | None:
    """The configured set; for ``latest`` with none stored, a set frozen now (None when nothing can be frozen)."""
    if config.set == "latest" and not list_sets(warehouse, SUITE):
        try:
            freeze(warehouse, config, splits, name="frozen on first use", held_out_splits=held_out_splits)
        except EvalError:
            return None
    return frozen(warehouse, config.set)


def set_items(frozen_set: dict, loaded: Loaded | None = None, limit: int | None = None) -> Loaded:
    """The frozen set's pairs as items (after ``loaded``'s, if given)."""
    loaded = loaded or Loaded()
    seen = {it.item.item_id: it.kind for it in loaded.items}
    for p in frozen_set["pair_rows"]:
        if limit is not None and len(loaded.items) >= limit:
            break
        kind = "inequivalent" if p["diverging_input"] else "equivalent"
        loaded.labels[kind] = loaded.labels.get(kind, 0) + 1
        loaded.add(PairItem(p["original_code"], p["variant_code"], p["entry_point"] or "", kind,
                            f"{frozen_set['set_id']}:{p['pair_id']}", kind, f"warehouse:{frozen_set['set_id']}",
                            [str(s) for s in p["seed_inputs"]], p["problem_id"]), seen)
    loaded.sources.append(f"warehouse:{frozen_set['set_id']}")
    loaded.set_id = frozen_set["set_id"]
    return loaded


def gather(config: EvalConfig, files: Iterable[Path] | None = None, warehouse: Warehouse | None = None,
           splits: SplitConfig | None = None, limit: int | None = None,
           held_out_splits: Iterable[str] = HELD_OUT_SPLITS) -> Loaded:
    """Every item to measure on: the files' (``[eval.equivalence] files`` when None), then the frozen set's when
    ``warehouse`` is given and a set exists or can be frozen. An EvalError when there is nothing at all."""
    eq = config.equivalence
    loaded = load_files(eq.files if files is None else list(files), eq, limit=limit)
    if warehouse is not None and (limit is None or len(loaded.items) < limit):
        frozen_set = frozen_or_freeze(warehouse, eq, splits, held_out_splits) if warehouse.path.exists() else None
        if frozen_set is not None:
            set_items(frozen_set, loaded, limit)
    if not loaded.items:
        raise EvalError("no pairs to measure: no labelled file given and no frozen set of held-out pairs",
                        hint="--file PAIRS.jsonl ([eval.equivalence] files), or a run with held-out pairs first")
    return loaded


# ---- measuring


def llm_sampling(config: EvalConfig):
    """An LLM evaluator's sampling for the suite; several greedy answers would be one answer repeated (and the
    transformers backend refuses them), so answers > 1 needs a temperature."""
    from sinq.agents.config import Sampling

    eq = config.equivalence
    if eq.answers > 1 and eq.temperature == 0:
        raise EvalError(f"{eq.answers} answers per pair at temperature 0 would be one greedy answer repeated",
                        hint="[eval.equivalence] temperature > 0, or answers = 1")
    return Sampling(temperature=eq.temperature, top_p=eq.top_p, max_tokens=eq.max_tokens, seed=config.seed)


def evaluate(pool: WorkerPool, loaded: Loaded, evaluator, config: EvalConfig | None = None, *,
             model: str | None = None, adapter: str | None = None, role: str | None = "evaluator",
             limit: int | None = None) -> EvalRun:
    """The evaluator's answers on every item, each claimed input settled in the sandbox, scored as the module
    says."""
    config = config or EvalConfig()
    eq = config.equivalence
    clock = Clock()
    items = loaded.items[:limit] if limit else loaded.items
    if not items:
        raise EvalError("no pairs to measure")
    requests = [EvaluatorRequest(it.item.item_id, it.program_1, it.program_2, it.entry_point, eq.answers,
                                 it.seed_inputs) for it in items]
    played = play_evaluate(evaluator, requests, pool, getattr(evaluator, "name", "evaluator"))
    results: list[Result] = []
    relabelled: list[str] = []
    for it, answers, literals, diverged in zip(items, played.answers, played.literals, played.successes,
                                               strict=True):
        truth = "inequivalent" if it.kind == "equivalent" and any(diverged) else it.kind
        if truth != it.kind:
            relabelled.append(it.row)
        for index, (answer, literal, div) in enumerate(zip(answers, literals, diverged, strict=True)):
            predicted = False if div else answer.equivalent
            correct = predicted is not None and predicted == (truth == "equivalent")
            verdict = played.verdicts.get((it.item.item_id, literal)) if literal else None
            results.append(Result(it.item.item_id, index, correct, float(correct), {
                "row": it.row, "origin": it.origin, "label": it.label, "kind": it.kind, "truth": truth,
                "predicted": predicted, "claimed_equivalent": answer.equivalent, "input": literal, "diverged": div,
                "outcome": score(it.kind, predicted, div).outcome, "reason": answer.reason,
                "verdict": f"{verdict.verdict}:{verdict.reason}" if verdict else None}))
    metrics = metrics_of(results, config.confidence)
    counts = {k: sum(1 for it in items if it.kind == k) for k in KINDS}
    detail: dict = {
        "sources": loaded.sources, "set_id": loaded.set_id, "pairs": len(items), "answers_per_pair": eq.answers,
        "by_label": counts, "labels": loaded.labels, "duplicates": loaded.duplicates,
        "conflicting_duplicates": loaded.conflicting, "relabelled": len(relabelled),
        "relabelled_items": relabelled[:50], "evaluator": getattr(evaluator, "name", None),
        "non_answers": sum(1 for r in results if r.detail["predicted"] is None),
        "without_seed_inputs": sum(1 for it in items if not it.seed_inputs),
        "columns": eq.columns.model_dump(), "rule": "a No is right on an inequivalent pair with or without a "
        "diverging input; a diverging No on an equivalent-labelled pair relabels it inequivalent"}
    if 0 in counts.values():
        detail["warning"] = (f"every pair is {'equivalent' if counts['equivalent'] else 'inequivalent'}: a constant "
                             "answer scores high without skill")
    detail |= clock.figures(len(items), len(results))
    sampling = {"answers": eq.answers, "temperature": eq.temperature, "top_p": eq.top_p, "max_tokens": eq.max_tokens}
    return EvalRun(SUITE, SUITE_VERSION, model, adapter, MODE, [it.item for it in items], results, metrics,
                   role=role, sampling=sampling, seeds={"sampling": config.seed}, detail=detail)


def metrics_of(results: list[Result], confidence: float = 0.95) -> dict[str, dict]:
    """Accuracy first (the headline), then per class, over answers against each item's truth for the run."""
    def on(truth: str) -> list[dict]:
        return [r.detail for r in results if r.detail["truth"] == truth]

    equivalent, inequivalent = on("equivalent"), on("inequivalent")
    metrics = {
        "accuracy": rate(sum(1 for r in results if r.correct), len(results), confidence),
        "recall_equivalent": rate(sum(1 for d in equivalent if d["predicted"] is True), len(equivalent),
                                  confidence),
        "recall_inequivalent": rate(sum(1 for d in inequivalent if d["predicted"] is False), len(inequivalent),
                                    confidence),
        "false_alarm_rate": rate(sum(1 for d in equivalent if d["predicted"] is False), len(equivalent),
                                 confidence),
        "miss_rate": rate(sum(1 for d in inequivalent if d["predicted"] is True), len(inequivalent), confidence),
        "witnessed_rate": rate(sum(1 for d in inequivalent if d["diverged"]), len(inequivalent), confidence),
        "answered": rate(sum(1 for r in results if r.detail["predicted"] is not None), len(results), confidence),
    }
    for origin in sorted({r.detail["origin"] for r in results}):
        mine = [r for r in results if r.detail["origin"] == origin]
        metrics[f"accuracy@{origin}"] = rate(sum(1 for r in mine if r.correct), len(mine), confidence)
    return metrics
