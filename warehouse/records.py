"""Rows for the warehouse, built from what the sandbox and the game produce; keys are content hashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sinq.game import syntax
from sinq.game.equivalence import mix
from sinq.game.hashing import json_sha256
from sinq.game.inputs import parse_input
from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.outcome import Outcome, Verdict
from sinq.sandbox.verify import Pair
from sinq.sources.problem import Problem


def content_id(*parts: object) -> str:
    """A stable key: sha256 over the parts' JSON, so equal content gives equal ids across runs and processes."""
    return json_sha256(list(parts))


def normalize_code(code: str) -> str:
    """What makes two programs the same program: line endings and trailing whitespace do not count."""
    lines = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def program_row(code: str, now: datetime) -> dict:
    return {"program_id": content_id("program", normalize_code(code)), "code": code, "created_at": now}


def exact_json(literal: str) -> str | None:
    """The input as JSON when JSON holds it exactly (no tuples, sets, bytes, complex or non-str keys), else None:
    a tuple silently turned into a list would change what the programs receive."""

    try:
        value = syntax.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None

    def exact(item: object) -> bool:
        if item is None or isinstance(item, (bool, int, float, str)):
            return True
        if type(item) is list:
            return all(exact(v) for v in item)
        if type(item) is dict:
            return all(isinstance(k, str) and exact(v) for k, v in item.items())
        return False

    return json.dumps(value) if exact(value) else None


def input_row(literal: str, now: datetime) -> dict:
    return {"input_id": content_id("input", literal), "literal": literal, "json": exact_json(literal),
            "created_at": now}


def _execution_row(outcome: Outcome, verdict_id: str, side: str, index: int, program_id: str, input_id: str,
                   entry_point: str, run_id: str, now: datetime) -> dict:
    return {
        "execution_id": content_id("execution", verdict_id, side, index),
        "verdict_id": verdict_id, "side": side, "program_id": program_id, "input_id": input_id,
        "entry_point": entry_point, "backend": outcome.backend, "runtime": outcome.runtime,
        "hash_seed": outcome.hash_seed, "kind": outcome.kind, "value": outcome.value, "value_type": outcome.type,
        "digest": outcome.digest, "loose_digest": outcome.loose_digest,
        "exc_type": outcome.type if outcome.kind == "raised" else None, "message": outcome.message,
        "limit_hit": outcome.limit, "signal": outcome.signal, "exit_code": outcome.exit_code,
        "reason": outcome.reason, "wall_s": outcome.wall_s, "run_id": run_id, "created_at": now,
    }


def verdict_rules(config: SandboxConfig) -> str:
    """What a verdict depends on besides its programs and input: the comparison, the limits, the stability rules
    (hash seeds, repeats, the longer budget). Not the backend, worker counts or the run: those do not change what
    the rules decide, so a verdict stored by any run under the same rules is the same row."""
    return content_id("rules", config.compare, config.limits.model_dump(mode="json"), list(config.hash_seeds),
                      config.repeats, config.longer_budget_factor)


def verdict_rows(pair: Pair, verdict: Verdict, run_id: str, compare_mode: str,
                 now: datetime | None = None, config: SandboxConfig | None = None) -> dict[str, list[dict]]:
    """programs, inputs, the verdict and every execution behind it. Ids are content: the programs, entry point,
    input, compare mode and (given ``config``) the verdict rules; ``run_id`` is provenance of the first store only,
    so a repeated or resumed run stores the same rows again, i.e. nothing."""
    now = now or datetime.now(UTC)
    if config is not None:
        compare_mode = config.compare
    rules = verdict_rules(config) if config is not None else None
    batch: dict[str, list[dict]] = {"programs": [], "inputs": [], "verdicts": [], "executions": []}
    sources = {}
    for side in ("original", "variant"):
        code = getattr(pair, side)
        code = code.decode("utf-8", "replace") if isinstance(code, bytes) else code
        row = program_row(code, now)
        sources[side] = row["program_id"]
        batch["programs"].append(row)
    try:
        literal = parse_input(pair.input).literal
    except ValueError:
        literal = json.dumps(pair.input, default=str) if not isinstance(pair.input, str) else pair.input
    row = input_row(literal, now)
    input_id = row["input_id"]
    batch["inputs"].append(row)
    verdict_id = content_id("verdict", sources["original"], sources["variant"], pair.entry_point, input_id,
                            compare_mode, rules)
    reference = verdict.original or verdict.variant
    batch["verdicts"].append({
        "verdict_id": verdict_id, "original_program_id": sources["original"],
        "variant_program_id": sources["variant"], "entry_point": pair.entry_point, "input_id": input_id,
        "verdict": verdict.verdict, "reason": verdict.reason, "detail": verdict.detail,
        "original_outcome": json.dumps(verdict.original.public()) if verdict.original else None,
        "variant_outcome": json.dumps(verdict.variant.public()) if verdict.variant else None,
        "compare_mode": compare_mode, "executions": verdict.executions,
        "sandbox_backend": reference.backend if reference else None,
        "sandbox_runtime": reference.runtime if reference else None,
        "run_id": run_id, "created_at": now,
    })
    for side, outcomes in verdict.runs.items():
        for index, outcome in enumerate(outcomes):
            batch["executions"].append(_execution_row(outcome, verdict_id, side, index, sources[side], input_id,
                                                      pair.entry_point, run_id, now))
    return batch


def pair_rows(batch: dict[str, list[dict]], generator: str, round_: int | None = None,
              problem_id: str | None = None, sample_id: str | None = None) -> list[dict]:
    """A verified pair for every diverging verdict of a batch built by ``verdict_rows``. Its id is the verdict's
    (content) plus, on the nightly path, the sample it settles (itself content: problem, generator, round, index), so
    the same claim stored twice is one row, while two samples that happen to agree stay two (one marked duplicate)."""
    rows = []
    for verdict in batch.get("verdicts", []):
        if verdict["verdict"] != "diverges":
            continue
        rows.append({
            "pair_id": content_id("pair", verdict["verdict_id"], *([sample_id] if sample_id else [])),
            "problem_id": problem_id, "sample_id": sample_id,
            "verdict_id": verdict["verdict_id"], "original_program_id": verdict["original_program_id"],
            "variant_program_id": verdict["variant_program_id"], "input_id": verdict["input_id"],
            "entry_point": verdict["entry_point"], "generator_agent_id": generator, "round": round_,
            "pair_kind": "inequivalent", "rewrite": None, "run_id": verdict["run_id"],
            "created_at": verdict["created_at"],
        })
    return rows


def merge(*batches: dict[str, list[dict]]) -> dict[str, list[dict]]:
    merged: dict[str, list[dict]] = {}
    for batch in batches:
        for table, rows in batch.items():
            merged.setdefault(table, []).extend(rows)
    return merged


def problem_row(problem: Problem, run_id: str, now: datetime) -> dict:
    return {"problem_id": problem.problem_id, "source": problem.source, "source_id": problem.source_id,
            "split": problem.split, "licence": problem.licence, "text": problem.text, "code": problem.code,
            "tests": problem.tests, "setup_code": problem.setup_code, "entry_point": problem.entry_point,
            "signature": problem.signature, "seed_inputs": json.dumps(problem.seed_inputs),
            "validation_status": "valid" if problem.reason is None else "invalid",
            "validation_reason": problem.reason, "run_id": run_id, "created_at": now}


def equivalent_pair_rows(tried: list[tuple[Pair, Verdict]], evidence: str, transformations: list[str],
                         generator: str, round_: int | None, problem_id: str | None, sample_id: str | None,
                         run_id: str, now: datetime, config: SandboxConfig | None = None,
                         fuzz: dict | None = None) -> dict[str, list[dict]]:
    """An equivalent pair (issue 15) from every input it was fuzzed on: each input's verdict and executions (all
    must be ``same``: a candidate that diverged anywhere is not equivalent and has no rows), a ``pairs`` row of kind
    ``equivalent`` naming the first input's verdict, and its ``equivalence_evidence`` (how it was made, the
    transformations, every input tried and its verdict). Never called proven: fuzzed equal on these inputs."""
    if not tried:
        raise ValueError("an equivalent pair needs at least one input it was fuzzed on")
    unequal = [v.verdict for _, v in tried if v.verdict != "same"]
    if unequal:
        raise ValueError(f"not equivalent on every input tried: verdicts {sorted(set(unequal))}")
    compare = (config or SandboxConfig()).compare
    batch: dict[str, list[dict]] = {}
    for pair, verdict in tried:
        batch = merge(batch, verdict_rows(pair, verdict, run_id, compare, now, config))
    verdicts = batch["verdicts"]
    first = verdicts[0]
    pair_id = content_id("pair", "equivalent", first["original_program_id"], first["variant_program_id"],
                         first["entry_point"], *([sample_id] if sample_id else []))
    batch["pairs"] = [{
        "pair_id": pair_id, "problem_id": problem_id, "sample_id": sample_id, "verdict_id": first["verdict_id"],
        "original_program_id": first["original_program_id"], "variant_program_id": first["variant_program_id"],
        "input_id": first["input_id"], "entry_point": first["entry_point"], "generator_agent_id": generator,
        "round": round_, "pair_kind": "equivalent", "rewrite": json.dumps(
            {"transformations": transformations, "mix": mix(transformations), "seed": (fuzz or {}).get("seed"),
             "of": "original"} if evidence == "construction" else {"transformations": transformations,
                                                                   "of": "original", "evidence": evidence}),
        "run_id": run_id, "created_at": now}]
    batch["equivalence_evidence"] = [{
        "pair_id": pair_id, "evidence": evidence, "transformations": json.dumps(transformations),
        "inputs_tried": len(verdicts), "input_ids": json.dumps([v["input_id"] for v in verdicts]),
        "verdict_ids": json.dumps([v["verdict_id"] for v in verdicts]), "fuzz": json.dumps(fuzz or {}),
        "run_id": run_id, "created_at": now}]
    return batch


def relabel_rows(pair_id: str, verdict_rows_: dict[str, list[dict]], answer_id: str | None, generator: str,
                 round_: int | None, problem_id: str | None, sample_id: str | None, run_id: str,
                 now: datetime) -> dict[str, list[dict]]:
    """An equivalent pair an evaluator's input refuted: the diverging verdict becomes an inequivalent pair (as any
    verified pair), and ``pair_relabels`` records which stored equivalent pair it overturned and by which answer."""
    [verdict] = verdict_rows_["verdicts"]
    if verdict["verdict"] != "diverges":
        raise ValueError(f"only a divergence refutes an equivalent pair, not {verdict['verdict']!r}")
    batch = merge(verdict_rows_, {"pairs": pair_rows(verdict_rows_, generator, round_, problem_id, sample_id)})
    batch["pair_relabels"] = [{
        "pair_id": pair_id, "relabelled_to": "inequivalent", "new_pair_id": batch["pairs"][0]["pair_id"],
        "answer_id": answer_id, "verdict_id": verdict["verdict_id"], "input_id": verdict["input_id"],
        "run_id": run_id, "created_at": now}]
    return batch


def attempt_row(problem_id: str, maker: str, round_: int | None, counts: dict, run_id: str, now: datetime) -> dict:
    """What a maker tried on one problem in a round: candidates, fuzzed, kept and the dropped ones by reason."""
    dropped = {k.removeprefix("dropped_"): v for k, v in sorted(counts.items()) if k.startswith("dropped_")}
    return {"attempt_id": content_id("equivalence-attempt", problem_id, maker, round_), "problem_id": problem_id,
            "maker_id": maker, "round": round_, "candidates": counts.get("candidates", 0),
            "fuzzed": counts.get("fuzzed", 0), "kept": counts.get("kept", 0), "dropped": json.dumps(dropped),
            "run_id": run_id, "created_at": now}
