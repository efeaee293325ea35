"""Can the pair kinds be told apart by their surface? (issue 27, `sinq train bench-leakage`)

An evaluator trained on pairs whose kinds differ in how they *look* (equivalent variants naming temporaries
``idx_152``, rewriting more lines than a one-site mutant) learns the look, not the semantics. This module measures
that: features of the surface only (line and token edits by difflib over ``tokenize``, the shape of the names a
variant introduces, AST node-type count deltas, length changes; never an output, never running code), a standard
classifier (gradient boosting and logistic regression; the better one is reported, so the figure errs towards
finding a leak), cross-validated with folds **grouped by seed program**, so two variants of one original never sit
on both sides of a split (the classifier would recognise the program, not the kind). Each feature group is measured
alone and left out (ablation). The pairs it gets wrong out of fold are the *hard split*: pairs whose kind their
surface does not give away.

Target (DESIGN.md §7): the accuracy stays within 15 points of the majority rate.
"""

from __future__ import annotations

import ast
import difflib
import io
import keyword
import re
import time
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from sinq.game import syntax
from sinq.game.errors import SinqError
from sinq.game.stats import wilson

if TYPE_CHECKING:
    import numpy as np

    from sinq.sources.config import SplitConfig
    from sinq.training.config import BuildConfig, DecontaminationConfig
    from sinq.warehouse.store import Warehouse

KINDS = ("inequivalent", "equivalent")
GROUPS = ("diff", "tokens", "identifiers", "ast", "length")
"""The feature groups, each measured alone and left out: a feature's group is its name's prefix."""
MIN_PER_KIND = 10
"""Fewer pairs of a kind than this (or than folds) and an accuracy says nothing: the command refuses."""
MAX_EXCESS = 0.15
"""DESIGN.md §7: a surface-only classifier tells the kinds apart no better than the majority rate + 15 points."""
AST_NODES = (
    "FunctionDef", "AsyncFunctionDef", "ClassDef", "Return", "Delete", "Assign", "AugAssign", "AnnAssign", "For",
    "While", "If", "With", "Raise", "Try", "Assert", "Import", "ImportFrom", "Global", "Nonlocal", "Expr", "Pass",
    "Break", "Continue", "Match", "BoolOp", "NamedExpr", "BinOp", "UnaryOp", "Lambda", "IfExp", "Dict", "Set",
    "ListComp", "SetComp", "DictComp", "GeneratorExp", "Await", "Yield", "YieldFrom", "Compare", "Call",
    "FormattedValue", "JoinedStr", "Constant", "Attribute", "Subscript", "Starred", "Name", "List", "Tuple", "Slice",
    "comprehension", "arguments", "arg", "keyword", "ExceptHandler", "Add", "Sub", "Mult", "Div", "FloorDiv", "Mod",
    "Pow", "BitAnd", "BitOr", "BitXor", "LShift", "RShift", "And", "Or", "Not", "USub", "UAdd", "Invert", "Eq",
    "NotEq", "Lt", "LtE", "Gt", "GtE", "In", "NotIn", "Is", "IsNot", "Load", "Store")
"""A fixed vocabulary (the same columns on every interpreter); any other node type counts as ``other``."""
_LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
_DIGIT_SUFFIX = re.compile(r"(?:_|[a-zA-Z])\d+$")


class LeakageRefused(SinqError):
    """Too few pairs of a kind, or fewer seed programs than folds: no accuracy would mean anything (exit 2)."""

    exit_code = 2


# ---- features (pure: text in, numbers out)
@dataclass(frozen=True)
class _Surface:
    tokens: tuple[tuple[int, str], ...]
    nodes: Counter
    depth: int
    parsed: bool


def _tokens(code: str) -> tuple[tuple[int, str], ...]:
    """(type, text) of each token, layout left out and comments kept; whitespace-split words when it does not
    tokenize, so a broken program still has a surface."""
    try:
        return tuple((t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(code).readline)
                     if t.type not in _LAYOUT)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return tuple((tokenize.NAME, word) for word in code.split())


def _depth(tree: ast.AST) -> int:
    deepest, pending = 0, [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        pending += [(child, depth + 1) for child in ast.iter_child_nodes(node)]
    return deepest


@lru_cache(maxsize=4096)
def _surface(code: str) -> _Surface:
    """What one program looks like; cached, since every variant of an original shares it."""
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _Surface(_tokens(code), Counter(), 0, False)
    nodes = Counter(type(node).__name__ for node in ast.walk(tree))
    return _Surface(_tokens(code), nodes, _depth(tree), True)


def _names(tokens: Sequence[tuple[int, str]]) -> list[str]:
    return [text for kind, text in tokens if kind == tokenize.NAME and not keyword.iskeyword(text)
            and not keyword.issoftkeyword(text)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _lines(code: str) -> list[str]:
    return code.splitlines()


def features(original: str, variant: str) -> dict[str, float]:
    """The surface of one pair, every value a number, names prefixed by their group (``GROUPS``)."""
    before, after = _surface(original), _surface(variant)
    f: dict[str, float] = {}
    # diff: line-level edits
    old_lines, new_lines = _lines(original), _lines(variant)
    lines = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    ops = [op for op in lines.get_opcodes() if op[0] != "equal"]
    f["diff.lines_removed"] = sum(i2 - i1 for _, i1, i2, _, _ in ops)
    f["diff.lines_added"] = sum(j2 - j1 for _, _, _, j1, j2 in ops)
    f["diff.lines_changed"] = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in ops)
    f["diff.hunks"] = len(ops)
    f["diff.line_ratio"] = lines.ratio()
    f["diff.chars_removed"] = sum(len(line) for _, i1, i2, _, _ in ops for line in old_lines[i1:i2])
    f["diff.chars_added"] = sum(len(line) for _, _, _, j1, j2 in ops for line in new_lines[j1:j2])
    f["diff.changed_line_share"] = f["diff.lines_changed"] / max(1, len(old_lines))
    # tokens: token-level edits
    old_text = [text for _, text in before.tokens]
    new_text = [text for _, text in after.tokens]
    matcher = difflib.SequenceMatcher(None, old_text, new_text, autojunk=False)
    edits = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    f["tokens.inserted"] = sum(j2 - j1 for tag, _, _, j1, j2 in edits if tag == "insert")
    f["tokens.deleted"] = sum(i2 - i1 for tag, i1, i2, _, _ in edits if tag == "delete")
    f["tokens.replaced"] = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in edits if tag == "replace")
    f["tokens.edit_ops"] = len(edits)
    f["tokens.ratio"] = matcher.ratio()
    changed = [after.tokens[j] for _, _, _, j1, j2 in edits for j in range(j1, j2)]
    removed = [before.tokens[i] for _, i1, i2, _, _ in edits for i in range(i1, i2)]
    f["tokens.changed_share"] = (len(changed) + len(removed)) / max(1, len(old_text) + len(new_text))
    for label, kind in (("name", tokenize.NAME), ("number", tokenize.NUMBER), ("op", tokenize.OP),
                        ("string", tokenize.STRING), ("comment", tokenize.COMMENT)):
        f[f"tokens.{label}_added"] = sum(1 for k, _ in changed if k == kind)
        f[f"tokens.{label}_removed"] = sum(1 for k, _ in removed if k == kind)
    # identifiers: the shape of names
    old_names, new_names = _names(before.tokens), _names(after.tokens)
    old_set, new_set = set(old_names), set(new_names)
    introduced, dropped = sorted(new_set - old_set), sorted(old_set - new_set)
    f["identifiers.new"] = len(introduced)
    f["identifiers.dropped"] = len(dropped)
    f["identifiers.distinct_delta"] = len(new_set) - len(old_set)
    f["identifiers.uses_delta"] = len(new_names) - len(old_names)
    f["identifiers.new_digit_suffixed"] = sum(1 for n in introduced if _DIGIT_SUFFIX.search(n))
    f["identifiers.digit_suffixed_delta"] = (sum(1 for n in new_set if _DIGIT_SUFFIX.search(n))
                                             - sum(1 for n in old_set if _DIGIT_SUFFIX.search(n)))
    f["identifiers.new_with_digits"] = sum(1 for n in introduced if any(c.isdigit() for c in n))
    f["identifiers.new_mean_length"] = _mean([len(n) for n in introduced])
    f["identifiers.new_max_length"] = max((len(n) for n in introduced), default=0)
    f["identifiers.new_underscores"] = sum(n.count("_") for n in introduced)
    f["identifiers.new_mean_underscores"] = _mean([n.count("_") for n in introduced])
    f["identifiers.new_single_letter"] = sum(1 for n in introduced if len(n) == 1)
    f["identifiers.mean_length_delta"] = _mean([len(n) for n in new_set]) - _mean([len(n) for n in old_set])
    f["identifiers.underscores_delta"] = (sum(n.count("_") for n in new_set) - sum(n.count("_") for n in old_set))
    # ast: node-type count deltas
    f["ast.parsed"] = float(before.parsed and after.parsed)
    for name in AST_NODES:
        f[f"ast.{name}"] = after.nodes.get(name, 0) - before.nodes.get(name, 0)
    known = set(AST_NODES)
    f["ast.other"] = (sum(n for k, n in after.nodes.items() if k not in known)
                      - sum(n for k, n in before.nodes.items() if k not in known))
    f["ast.nodes_delta"] = sum(after.nodes.values()) - sum(before.nodes.values())
    f["ast.abs_delta"] = sum(abs(after.nodes.get(k, 0) - before.nodes.get(k, 0))
                             for k in set(after.nodes) | set(before.nodes))
    f["ast.depth_delta"] = after.depth - before.depth
    # length: how much bigger or smaller
    f["length.chars_delta"] = len(variant) - len(original)
    f["length.chars_ratio"] = len(variant) / max(1, len(original))
    f["length.lines_delta"] = len(new_lines) - len(old_lines)
    f["length.lines_ratio"] = len(new_lines) / max(1, len(old_lines))
    f["length.tokens_delta"] = len(new_text) - len(old_text)
    f["length.blank_lines_delta"] = (sum(1 for x in new_lines if not x.strip())
                                     - sum(1 for x in old_lines if not x.strip()))
    f["length.max_line_delta"] = max(map(len, new_lines), default=0) - max(map(len, old_lines), default=0)
    f["length.indent_delta"] = (max((len(x) - len(x.lstrip()) for x in new_lines), default=0)
                                - max((len(x) - len(x.lstrip()) for x in old_lines), default=0))
    return {k: float(v) for k, v in f.items()}


def group_of(name: str) -> str:
    return name.split(".", 1)[0]


# ---- the measurement
@dataclass
class Measurement:
    """The figures (``figures``: what the command prints) and every pair's out-of-fold prediction."""

    figures: dict
    predictions: list[dict] = field(default_factory=list)

    @property
    def hard(self) -> list[dict]:
        """The hard split: the pairs the cross-validated classifier got wrong."""
        return [p for p in self.predictions if not p["correct"]]


def _check(rows: list[dict], folds: int) -> None:
    if folds < 2:
        raise LeakageRefused(f"--folds must be at least 2, got {folds}")
    groups = len({_group(r) for r in rows})
    if rows and groups < folds:
        raise LeakageRefused(f"{groups} seed programs for {folds} folds: folds are grouped by program",
                             hint=f"--folds {max(2, groups)} or fewer, or more problems")
    counts = Counter(r["kind"] for r in rows)
    least = max(MIN_PER_KIND, folds)
    short = [k for k in KINDS if counts.get(k, 0) < least]
    if short:
        have = ", ".join(f"{counts.get(k, 0)} {k}" for k in KINDS)
        raise LeakageRefused(f"too few pairs to measure leakage: {have} (at least {least} of each kind)",
                             hint="fill the warehouse with `sinq run` (equivalent pairs need [agents.equivalence])"
                                  ", or drop --run")


def _group(row: dict) -> str:
    """The seed program a pair belongs to: its problem, or its original's text when it has none (`sinq verify`)."""
    return str(row["problem_id"]) if row.get("problem_id") is not None else "code:" + row["original_code"]


def _folds(y: np.ndarray, groups: list[str], folds: int, seed: int) -> np.ndarray:
    """Each pair's test fold: stratified by kind, grouped by seed program, seeded."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    assignment = np.full(len(y), -1)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        assignment[test] = fold
    return assignment


def _models(seed: int) -> dict:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def signed_log(x: np.ndarray) -> np.ndarray:
        return np.sign(x) * np.log1p(np.abs(x))

    return {"gbm": lambda: HistGradientBoostingClassifier(random_state=seed),
            "logreg": lambda: make_pipeline(FunctionTransformer(signed_log), StandardScaler(),
                                            LogisticRegression(max_iter=2000))}


def _out_of_fold(make, X: np.ndarray, y: np.ndarray, assignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted kind (1 = equivalent) and P(equivalent) of every pair, each from a model that never saw its
    program; a training fold of one kind predicts that kind."""
    import numpy as np

    predicted, probability = np.zeros(len(y), dtype=int), np.zeros(len(y))
    for fold in np.unique(assignment):
        test, train = assignment == fold, assignment != fold
        if len(np.unique(y[train])) < 2:
            predicted[test], probability[test] = y[train][0], float(y[train][0])
            continue
        model = make().fit(X[train], y[train])
        probability[test] = model.predict_proba(X[test])[:, 1]
        predicted[test] = (probability[test] >= 0.5).astype(int)
    return predicted, probability


def _rate(correct: int, n: int) -> dict:
    value, low, high = wilson(correct, n)
    return {"value": round(value, 4), "low": round(low, 4), "high": round(high, 4), "k": correct, "n": n}


def _best(models: dict, X: np.ndarray, y: np.ndarray, assignment: np.ndarray) -> tuple[str, dict, np.ndarray,
                                                                                      np.ndarray]:
    """Both classifiers on the same folds; the better one (ties: the first, gradient boosting) with its rates."""
    rates, runs = {}, {}
    for name, make in models.items():
        runs[name] = _out_of_fold(make, X, y, assignment)
        rates[name] = _rate(int((runs[name][0] == y).sum()), len(y))
    best = max(rates, key=lambda name: rates[name]["k"])
    return best, rates, *runs[best]


def _strongest(X: np.ndarray, y: np.ndarray, assignment: np.ndarray, names: list[str], top: int) -> list[dict]:
    """Each feature alone through a depth-2 tree, cross-validated on the same folds: which single figure gives the
    kind away most (what a generator change should go after first)."""
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier

    scored = []
    for column, name in enumerate(names):
        values = X[:, [column]]
        if np.all(values == values[0]):
            continue
        predicted, _ = _out_of_fold(lambda: DecisionTreeClassifier(max_depth=2, random_state=0), values, y,
                                    assignment)
        scored.append({"feature": name, "accuracy": round(float((predicted == y).mean()), 4)})
    return sorted(scored, key=lambda s: (-s["accuracy"], s["feature"]))[:top]


def measure(rows: list[dict], folds: int = 5, seed: int = 0, top_features: int = 10) -> Measurement:
    """Cross-validated accuracy of a surface-only classifier at telling the kinds apart, beside the majority rate,
    per feature group (alone and left out), with every pair's out-of-fold prediction. ``rows`` carry pair_id,
    problem_id, kind, original_code and variant_code (``sinq.warehouse.leakage.leakage_pairs``)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    _check(rows, folds)
    table = [features(r["original_code"], r["variant_code"]) for r in rows]
    names = list(table[0])
    X = np.array([[f[name] for name in names] for f in table])
    y = np.array([int(r["kind"] == "equivalent") for r in rows])
    groups = [_group(r) for r in rows]
    assignment = _folds(y, groups, folds, seed)
    models = _models(seed)
    counts = Counter(r["kind"] for r in rows)
    majority_kind = max(KINDS, key=lambda k: (counts.get(k, 0), k == "inequivalent"))
    majority = counts[majority_kind] / len(rows)
    by_group = {}
    with threadpool_limits(1):  # small data: threads only spin (20x slower on two busy cores, measured)
        model, rates, predicted, probability = _best(models, X, y, assignment)
        for group in GROUPS:
            inside = [i for i, name in enumerate(names) if group_of(name) == group]
            outside = [i for i, name in enumerate(names) if group_of(name) != group]
            alone = _best(models, X[:, inside], y, assignment)
            without = _best(models, X[:, outside], y, assignment)
            by_group[group] = {"features": len(inside), "alone": {**alone[1][alone[0]], "model": alone[0]},
                               "without": {**without[1][without[0]], "model": without[0]}}
        strongest = _strongest(X, y, assignment, names, top_features)
    accuracy = rates[model]
    excess = round(accuracy["value"] - majority, 4)
    predictions = [{"pair_id": r["pair_id"], "problem_id": r["problem_id"], "kind": r["kind"],
                    "predicted": KINDS[int(predicted[i])], "p_equivalent": round(float(probability[i]), 4),
                    "fold": int(assignment[i]), "correct": bool(predicted[i] == y[i])} for i, r in enumerate(rows)]
    figures = {
        "pairs": len(rows), "kinds": {k: counts.get(k, 0) for k in KINDS}, "problems": len(set(groups)),
        "folds": folds, "seed": seed, "majority": round(majority, 4), "majority_kind": majority_kind,
        "accuracy": accuracy, "model": model, "models": rates, "excess_over_majority": excess,
        "target": {"max_excess": MAX_EXCESS, "met": excess <= MAX_EXCESS},
        "by_feature_group": by_group,
        "strongest_features": strongest,
        "features": len(names), "hard_split": sum(1 for p in predictions if not p["correct"]),
        "seconds": round(time.perf_counter() - started, 2)}
    return Measurement(figures, predictions)


# ---- from the warehouse
def bench_leakage(warehouse: Warehouse, run_id: str | None = None, folds: int = 5, seed: int = 0) -> Measurement:
    """The measurement on the standing pairs of a warehouse (or of one run)."""
    from sinq.warehouse.leakage import leakage_pairs

    measured = measure(leakage_pairs(warehouse, run_id), folds, seed)
    measured.figures["run"] = run_id
    return measured


def hard_split(warehouse: Warehouse, run_id: str | None = None, folds: int = 5, seed: int = 0) -> list[dict]:
    """The pairs the cross-validated surface classifier misclassifies: whose kind their look does not give away."""
    return bench_leakage(warehouse, run_id, folds, seed).hard


def hard_snapshot(warehouse: Warehouse, kind: str, role: str, config: BuildConfig,
                  decontamination: DecontaminationConfig | None = None, split: SplitConfig | None = None,
                  folds: int = 5, seed: int = 0) -> dict:
    """`sinq train build --hard-only`: a set built as usual, then only the examples of hard-split pairs kept; the
    rest is recorded as left out (``surface_easy``) on the card and the ``training_sets`` row."""
    from sinq.training.datasets import select, write_snapshot

    hard = {p["pair_id"] for p in hard_split(warehouse, None, folds, seed)}
    examples, hygiene = select(warehouse, kind, role, config, decontamination, split)
    kept = [e for e in examples if e["pair_id"] in hard]
    easy = sorted({e["pair_id"] for e in examples if e["pair_id"] not in hard})
    if easy:
        hygiene.removed = {**hygiene.removed, "surface_easy": easy}
    if not kept:
        raise ValueError(f"no {kind} example for the {role} comes from a hard-split pair ({len(hard)} hard pairs, "
                         f"{len(examples)} examples before the split)")
    return {**write_snapshot(warehouse, kind, role, kept, config, hygiene), "hard_pairs": len(hard)}
