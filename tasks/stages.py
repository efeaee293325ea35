"""The nightly stages as plain functions over batches of problem ids (the Prefect tasks in tasks/nightly.py wrap
them). Heavy data moves through the warehouse by id; every stage first asks the warehouse what is already done
(content-hash keys), so a rerun or a resumed run adds nothing twice and calls no agent twice."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sinq.agents.base import EvaluatorRequest, GeneratorRequest, GeneratorSample
from sinq.agents.config import AgentConfig
from sinq.game.difficulty import label
from sinq.game.parsing import normalize_input
from sinq.sandbox import open_backend
from sinq.sandbox.image import runner_sha
from sinq.sandbox.local import SandboxUnavailable
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.verify import Pair, raise_for_sandbox, verify_many
from sinq.settings import Settings
from sinq.sources.problem import Problem
from sinq.tasks.hygiene import preparer
from sinq.tasks.validation import needs_recheck, validate, validation_key
from sinq.warehouse.records import content_id, input_row, merge, pair_rows, program_row, verdict_rows
from sinq.warehouse.store import Warehouse

_pools: dict[str, tuple[WorkerPool, threading.Lock]] = {}
_pools_lock = threading.Lock()


def sandbox_for(settings: Settings) -> tuple[WorkerPool, threading.Lock]:
    """One started pool per process and sandbox config (workers are expensive to start; batches share them). The
    lock serialises batches of one process on it: the pool already uses every core."""
    key = settings.sandbox.model_dump_json()
    with _pools_lock:
        if key not in _pools:
            pool = open_backend(settings.sandbox)
            pool.start()
            _pools[key] = (pool, threading.Lock())
        return _pools[key]


_waits = threading.local()


@contextmanager
def holding(lock: threading.Lock) -> Iterator[None]:
    """Hold the pool's lock, counting the wait: waiting is not work (the pipeline bench separates the two)."""
    started = time.perf_counter()
    with lock:
        _waits.seconds = getattr(_waits, "seconds", 0.0) + time.perf_counter() - started
        yield


@contextmanager
def no_lost_executions(pool: WorkerPool, what: str) -> Iterator[None]:
    """Around a batch's sandbox work (under the pool's lock, so the batch is alone on it): an execution the pool
    lost, wherever it happened (the generator's input search, a verdict, the evaluator's checks), makes the batch an
    infrastructure failure before anything is stored, so a lost worker never becomes a sample, a verdict or an
    answer."""
    before = pool.lost
    yield
    if pool.lost > before:
        raise SandboxUnavailable(f"the sandbox lost {pool.lost - before} execution(s) of this {what} batch (its "
                                 "workers died even after replacement); nothing of this batch was stored")


def take_lock_wait() -> float:
    seconds, _waits.seconds = getattr(_waits, "seconds", 0.0), 0.0
    return seconds


def close_sandboxes() -> None:
    with _pools_lock:
        for pool, _ in _pools.values():
            pool.close()
        _pools.clear()


def agent_id(role: str, config: AgentConfig, settings: Settings) -> str:
    if config.kind == "baseline":
        params = settings.agents.baseline.model_dump_json()
        name = "baseline-mutation" if role == "generator" else "baseline-fuzz"
        return f"{role}:{name}:{content_id(params)[:8]}"
    from sinq.agents.backends import llm_agent_id, resolve_adapter

    return llm_agent_id(role, resolve_adapter(config, role, warehouse_for(settings)))


def agent_rows(settings: Settings, now: datetime) -> list[dict]:
    rows = []
    for role in ("generator", "evaluator"):
        config: AgentConfig = getattr(settings.agents, role)
        params = settings.agents.baseline.model_dump() if config.kind == "baseline" else config.sampling.model_dump()
        rows.append({"agent_id": agent_id(role, config, settings), "role": role, "kind": config.kind,
                     "backend": config.backend, "model": config.model, "adapter": config.adapter,
                     "base_model": config.model, "params": json.dumps(params), "created_at": now})
    return rows


def warehouse_for(settings: Settings) -> Warehouse:
    return Warehouse(settings.warehouse.path, settings.warehouse.lock_timeout_s)


# ---- problems
def problem_row(problem: Problem, run_id: str, now: datetime) -> dict:
    return {"problem_id": problem.problem_id, "source": problem.source, "source_id": problem.source_id,
            "split": problem.split, "licence": problem.licence, "text": problem.text, "code": problem.code,
            "tests": problem.tests, "setup_code": problem.setup_code, "entry_point": problem.entry_point,
            "signature": problem.signature, "seed_inputs": json.dumps(problem.seed_inputs),
            "validation_status": "valid" if problem.reason is None else "invalid",
            "validation_reason": problem.reason, "run_id": run_id, "created_at": now}


def source_problems(settings: Settings, run_id: str) -> dict:
    """Load the source; validate only problems without a trusted validation under this run's ``validation_key``
    (limits, runner version, backend): other limits validate again, and an ``invalid`` that may be the machine's
    doing (timeout, crash, resource limit) is re-checked by every later run before it is believed."""
    from sinq.sources.loaders import load

    problems = load(settings.run.source, limit=settings.run.limit, splits=settings.sources.split)
    warehouse = warehouse_for(settings)
    key = validation_key(settings.sandbox)
    stored: set[str] = set()
    known: dict[str, tuple[str, str | None, str]] = {}
    ids = [p.problem_id for p in problems]
    if warehouse.path.exists() and ids:
        with warehouse.reading() as con:
            stored = {r[0] for r in con.execute(
                "SELECT problem_id FROM problems WHERE problem_id IN (SELECT unnest(?))", [ids]).fetchall()}
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'validations'"
                           ).fetchall()[0][0]:
                known = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
                    "SELECT problem_id, status, reason, run_id FROM validations WHERE validation_key = ? "
                    "AND problem_id IN (SELECT unnest(?)) QUALIFY row_number() OVER (PARTITION BY problem_id "
                    "ORDER BY created_at DESC, run_id) = 1", [key, ids]).fetchall()}
    trusted = {pid: (status, reason) for pid, (status, reason, by) in known.items()
               if status == "valid" or by == run_id or not needs_recheck(reason)}
    fresh = [p for p in problems if p.problem_id not in trusted]
    if any(p.reason is None for p in fresh):
        pool, lock = sandbox_for(settings)
        with holding(lock), no_lost_executions(pool, "validation"):
            validate(fresh, pool)
    now = datetime.now(UTC)
    limits, sha = settings.sandbox.limits.model_dump_json(), runner_sha()
    warehouse.store({
        "problems": [problem_row(p, run_id, now) for p in fresh if p.problem_id not in stored],
        "validations": [{"problem_id": p.problem_id, "validation_key": key,
                         "status": "valid" if p.reason is None else "invalid", "reason": p.reason,
                         "limits": limits, "runner_sha": sha, "run_id": run_id, "created_at": now} for p in fresh],
        "agents": agent_rows(settings, now)})
    for problem in problems:
        if problem.problem_id in trusted:
            status, reason = trusted[problem.problem_id]
            problem.reason = None if status == "valid" else reason
    usable = [p.problem_id for p in problems if p.reason is None]
    reasons = Counter(p.reason for p in problems if p.reason is not None)
    return {"source": settings.run.source, "loaded": len(problems), "validated_now": len(fresh),
            "usable": len(usable), "rejected": dict(reasons.most_common()), "problem_ids": usable}


def _problems(warehouse: Warehouse, ids: list[str]) -> list[Problem]:
    with warehouse.reading() as con:
        rows = con.execute(
            "SELECT problem_id, source, source_id, code, tests, entry_point, text, setup_code, split, licence, "
            "signature, seed_inputs FROM problems WHERE problem_id IN (SELECT unnest(?))", [ids]).fetchall()
    by_id = {r[0]: Problem(source=r[1], source_id=r[2], code=r[3], tests=r[4], entry_point=r[5], text=r[6] or "",
                           setup_code=r[7] or "", split=r[8] or "train", licence=r[9], signature=r[10],
                           seed_inputs=json.loads(r[11] or "[]"), problem_id=r[0]) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


# ---- generation
def _sample_rows(problem: Problem, group: list[GeneratorSample], generator: str, settings: Settings, run_id: str,
                 now: datetime) -> dict[str, list[dict]]:
    round_, difficulty = settings.run.round, settings.agents.target_difficulty
    batch: dict[str, list[dict]] = {"samples": [], "programs": [], "inputs": []}
    if not group:
        group = [GeneratorSample(problem.problem_id, None, None, "no_sample")]
    for index, sample in enumerate(group):
        sample_id = content_id("sample", problem.problem_id, generator, round_, difficulty, index)
        program_id = input_id = None
        if sample.program is not None:
            row = program_row(sample.program, now)
            batch["programs"].append(row)
            program_id = row["program_id"]
        if sample.input is not None:
            try:
                literal = normalize_input(sample.input)
            except ValueError:
                literal = sample.input
            row = input_row(literal, now)
            batch["inputs"].append(row)
            input_id = row["input_id"]
        meta = sample.meta
        response_id = f"{meta['request_key']}:{meta['choice']}" if "request_key" in meta else None
        batch["samples"].append({
            "sample_id": sample_id, "problem_id": problem.problem_id, "agent_id": generator,
            "response_id": response_id, "round": round_, "target_difficulty": difficulty, "program_id": program_id,
            "input_id": input_id, "status": "valid" if sample.reason is None else "rejected",
            "reason": sample.reason, "detail": (meta.get("detail") or meta.get("operator")),
            "run_id": run_id, "created_at": now})
        if sample.verdict is not None and sample.program is not None:
            pair = Pair(sample_id, problem.program, sample.program, problem.entry_point or "", sample.input)
            rows = verdict_rows(pair, sample.verdict, run_id, settings.sandbox.compare, now, settings.sandbox)
            rows["pairs"] = pair_rows(rows, generator, round_, problem.problem_id, sample_id)
            batch = merge(batch, rows)
    return batch


def pending_generation(warehouse: Warehouse, ids: list[str], generator: str, round_: int,
                       difficulty: int) -> list[str]:
    with warehouse.reading() as con:
        done = {r[0] for r in con.execute(
            "SELECT DISTINCT problem_id FROM samples WHERE agent_id = ? AND round = ? AND target_difficulty = ? "
            "AND problem_id IN (SELECT unnest(?))", [generator, round_, difficulty, ids]).fetchall()}
    return [i for i in ids if i not in done]


def generate_batch(settings: Settings, run_id: str, problem_ids: list[str]) -> dict:
    """Samples for the problems of this batch not yet generated, settled in the sandbox, stored in one write; each
    pair marked there (AST hash, flags, duplicate of an earlier pair of its problem: ``tasks.hygiene``)."""
    from sinq.agents.backends import make_generator

    warehouse = warehouse_for(settings)
    generator = agent_id("generator", settings.agents.generator, settings)
    todo = pending_generation(warehouse, problem_ids, generator, settings.run.round,
                              settings.agents.target_difficulty)
    counts = {"problems": len(problem_ids), "skipped": len(problem_ids) - len(todo), "samples": 0, "valid": 0,
              "verified_pairs": 0, "duplicates": 0, "reasons": {}}
    if not todo:
        return counts
    problems = _problems(warehouse, todo)
    pool, lock = sandbox_for(settings)
    with holding(lock), no_lost_executions(pool, "generate"):
        agent = make_generator(settings.agents.generator, settings.agents.baseline, pool, warehouse, run_id)
        groups = agent.generate([GeneratorRequest(p, settings.agents.target_difficulty,
                                                  settings.agents.pairs_per_problem) for p in problems])
    raise_for_sandbox([s.verdict for g in groups for s in g if s.verdict is not None], "sample checks")
    now = datetime.now(UTC)
    batch = merge(*(_sample_rows(p, g, generator, settings, run_id, now)
                    for p, g in zip(problems, groups, strict=True)))
    warehouse.store(batch, prepare=preparer(settings.quality))
    samples = batch.get("samples", [])
    pairs = batch.get("pairs", [])
    counts.update(samples=len(samples), valid=sum(s["status"] == "valid" for s in samples),
                  verified_pairs=sum(p["duplicate_of"] is None for p in pairs),
                  duplicates=sum(p["duplicate_of"] is not None for p in pairs),
                  reasons=dict(Counter(s["reason"] for s in samples if s["reason"]).most_common()))
    return counts


# ---- evaluation
def pending_pairs(warehouse: Warehouse, ids: list[str], generator: str, round_: int, evaluator: str) -> list[tuple]:
    """This round's unlabelled pairs of these problems; duplicates never cost the evaluator anything."""
    with warehouse.reading() as con:
        return con.execute(
            "SELECT p.pair_id, o.code, v.code, p.entry_point, pr.seed_inputs FROM pairs p "
            "JOIN programs o ON o.program_id = p.original_program_id "
            "JOIN programs v ON v.program_id = p.variant_program_id "
            "JOIN problems pr ON pr.problem_id = p.problem_id "
            "WHERE p.generator_agent_id = ? AND p.round = ? AND p.problem_id IN (SELECT unnest(?)) "
            "AND p.duplicate_of IS NULL AND NOT EXISTS (SELECT 1 FROM difficulty_labels d WHERE d.pair_id = p.pair_id "
            "AND d.evaluator_agent_id = ? AND d.round = p.round) ORDER BY p.pair_id",
            [generator, round_, ids, evaluator]).fetchall()


def evaluate_batch(settings: Settings, run_id: str, problem_ids: list[str]) -> dict:
    """The evaluator's answers for this batch's unlabelled pairs, each checked in the sandbox; difficulty labels."""
    from sinq.agents.backends import make_evaluator

    warehouse = warehouse_for(settings)
    generator = agent_id("generator", settings.agents.generator, settings)
    evaluator = agent_id("evaluator", settings.agents.evaluator, settings)
    round_, n = settings.run.round, settings.agents.answers
    pairs = pending_pairs(warehouse, problem_ids, generator, round_, evaluator)
    counts = {"evaluated_pairs": 0, "answers": 0, "successful_answers": 0, "difficulty": {}}
    if not pairs:
        return counts
    requests = [EvaluatorRequest(pid, original, variant, entry, n, json.loads(seeds or "[]"))
                for pid, original, variant, entry, seeds in pairs]
    pool, lock = sandbox_for(settings)
    with holding(lock), no_lost_executions(pool, "evaluate"):
        agent = make_evaluator(settings.agents.evaluator, settings.agents.baseline, pool, warehouse, run_id)
        answers = agent.evaluate(requests)
        checks: dict[tuple[str, str], Pair] = {}
        for request, group in zip(requests, answers, strict=True):
            for answer in group:
                if answer.input is not None:
                    literal = normalize_input(answer.input)
                    checks.setdefault((request.pair_id, literal), Pair(
                        f"{request.pair_id}:{literal}", request.original, request.variant, request.entry_point,
                        literal))
        verdicts = dict(zip(checks, verify_many(list(checks.values()), pool), strict=True)) if checks else {}
    raise_for_sandbox(list(verdicts.values()), "answer checks")
    now = datetime.now(UTC)
    batch: dict[str, list[dict]] = {"evaluator_answers": [], "difficulty_labels": []}
    verdict_ids: dict[tuple[str, str], tuple[str, bool]] = {}
    for key, pair in checks.items():
        rows = verdict_rows(pair, verdicts[key], run_id, settings.sandbox.compare, now, settings.sandbox)
        verdict_ids[key] = (rows["verdicts"][0]["verdict_id"], verdicts[key].verdict == "diverges")
        batch = merge(batch, rows)
    histogram: Counter = Counter()
    for request, group in zip(requests, answers, strict=True):
        successes = []
        literals = [normalize_input(a.input) if a.input is not None else None for a in group]
        for index, (answer, literal) in enumerate(zip(group, literals, strict=True)):
            verdict_id, diverged = verdict_ids.get((request.pair_id, literal), (None, False)) if literal else (
                None, False)
            successes.append(diverged)
            batch["evaluator_answers"].append({
                "answer_id": content_id("answer", request.pair_id, evaluator, round_, index),
                "pair_id": request.pair_id, "agent_id": evaluator, "response_id": None, "answer_index": index,
                "input_id": content_id("input", literal) if literal else None,
                "claimed_equivalent": answer.equivalent, "weight": literals.count(literal) if literal else 0,
                "verdict_id": verdict_id, "counted": True, "diverged": diverged, "reason": answer.reason,
                "round": round_, "run_id": run_id, "created_at": now})
        difficulty = label(successes, evaluator).difficulty
        histogram[difficulty] += 1
        batch["difficulty_labels"].append({
            "pair_id": request.pair_id, "evaluator_agent_id": evaluator, "round": round_, "n_answers": len(successes),
            "n_failures": successes.count(False), "difficulty": difficulty, "run_id": run_id, "created_at": now})
    warehouse.store(batch)
    answers_flat = batch["evaluator_answers"]
    counts.update(evaluated_pairs=len(requests), answers=len(answers_flat),
                  successful_answers=sum(a["diverged"] for a in answers_flat),
                  difficulty={str(k): v for k, v in sorted(histogram.items())})
    return counts


# ---- summary and snapshot
def run_summary(settings: Settings, run_id: str) -> dict:
    """What this run added (and the round's totals), read back from the warehouse: the figures users see.
    ``verified_pairs`` is what the public view holds for the run: no duplicates of earlier pairs, nothing an audit
    could not reproduce (``stored_pairs`` has them all, ``duplicates`` counts
    them by kind); ``flagged`` counts the degenerate flags of the non-duplicates; ``verification_rate`` is stored
    pairs per sample (a duplicate still verified)."""
    warehouse = warehouse_for(settings)
    generator = agent_id("generator", settings.agents.generator, settings)
    evaluator = agent_id("evaluator", settings.agents.evaluator, settings)
    round_ = settings.run.round
    with warehouse.reading() as con:
        def one(sql: str, params: list) -> tuple:
            return con.execute(sql, params).fetchall()[0]

        samples, valid = one("SELECT count(*), count(*) FILTER (WHERE status = 'valid') FROM samples "
                             "WHERE run_id = ?", [run_id])
        stored, pairs, exact, near = one(
            "SELECT count(*), (SELECT count(*) FROM verified_pairs v WHERE v.run_id = ?), "
            "count(*) FILTER (WHERE duplicate_kind = 'exact'), count(*) FILTER (WHERE duplicate_kind = 'near') "
            "FROM pairs WHERE run_id = ?", [run_id, run_id])
        flagged = con.execute(
            "SELECT flag, count(*) FROM (SELECT unnest(from_json(flags, '[\"VARCHAR\"]')) AS flag FROM pairs "
            "WHERE run_id = ? AND duplicate_of IS NULL) GROUP BY 1 ORDER BY 2 DESC, 1", [run_id]).fetchall()
        labelled, answers, successes = one(
            "SELECT (SELECT count(*) FROM difficulty_labels WHERE run_id = ?), count(*), "
            "count(*) FILTER (WHERE diverged) FROM evaluator_answers WHERE run_id = ?", [run_id, run_id])
        histogram = dict(con.execute("SELECT difficulty, count(*) FROM difficulty_labels WHERE run_id = ? "
                                     "GROUP BY 1 ORDER BY 1", [run_id]).fetchall())
        reasons = con.execute("SELECT reason, count(*) FROM samples WHERE run_id = ? AND reason IS NOT NULL "
                              "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", [run_id]).fetchall()
        total_pairs, total_labelled = one(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM difficulty_labels d WHERE "
            "d.pair_id = p.pair_id AND d.evaluator_agent_id = ? AND d.round = p.round)) FROM pairs p "
            "WHERE generator_agent_id = ? AND round = ? AND duplicate_of IS NULL", [evaluator, generator, round_])
        sources = con.execute(
            "SELECT pr.source, count(DISTINCT s.problem_id), count(*), count(*) FILTER (WHERE s.status = 'valid'), "
            "count(DISTINCT p.pair_id) FILTER (WHERE p.duplicate_of IS NULL) FROM samples s JOIN problems pr "
            "USING (problem_id) "
            "LEFT JOIN pairs p ON p.sample_id = s.sample_id WHERE s.run_id = ? GROUP BY 1 ORDER BY 1",
            [run_id]).fetchall()
    return {
        "run_id": run_id, "samples": samples, "valid_samples": valid, "verified_pairs": pairs,
        "stored_pairs": stored, "verification_rate": round(stored / samples, 4) if samples else 0.0,
        "duplicates": {"exact": exact, "near": near}, "flagged": dict(flagged),
        "evaluated_pairs": labelled, "answers": answers,
        "evaluator_success_rate": round(successes / answers, 4) if answers else None,
        "difficulty_histogram": {str(k): v for k, v in histogram.items()},
        "top_rejection_reasons": [[r, c] for r, c in reasons],
        "round": round_, "generator": generator, "evaluator": evaluator,
        "round_verified_pairs": total_pairs, "round_evaluated_pairs": total_labelled,
        "sources": [{"source": s, "problems": p, "samples": n, "valid_samples": v, "verified_pairs": c}
                    for s, p, n, v, c in sources],
    }


def export_snapshot(settings: Settings, run_id: str) -> dict | None:
    """This run's verified pairs as Parquet + dataset card under export_dir/run_id (None when exports are off)."""
    from sinq.warehouse.export import export

    if settings.run.export_dir is None:
        return None
    target = settings.run.export_dir / run_id
    result = export(warehouse_for(settings), target, "parquet", run_id)
    return {"path": str(target), **{k: v for k, v in result.items() if isinstance(v, (int, str))}}


# ---- liveness: a run says where it lives and that it is alive, so that a SIGKILLed one is found dead
STALE_AFTER_S = 6 * 3600.0
"""A running run whose heartbeat is older than this is dead wherever it ran (its host may not be this one)."""
HEARTBEAT_EVERY_S = 30.0
CRASHED = "crashed: its process is gone (killed or lost) — found by a later run or `sinq db info`"


def run_identity() -> dict:
    """The ``runs`` columns that let a later process tell whether this run is still alive."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat_at": datetime.now(UTC)}


def heartbeat(warehouse: Warehouse, run_id: str) -> None:
    """One short write: the run is alive (the stale-run check trusts a recent heartbeat from another host). A busy
    database skips a beat rather than fail the run: the bound is hours, the beats are seconds apart."""
    from sinq.warehouse.store import WarehouseBusy

    try:
        with warehouse.writing() as con:
            con.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ? AND status = 'running'",
                        [datetime.now(UTC), run_id])
    except WarehouseBusy:
        return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_runs(warehouse: Warehouse, exclude: str | None = None) -> list[dict]:
    """Mark ``crashed`` every ``running`` run that is dead: on this host with its pid gone, or silent for longer than
    ``STALE_AFTER_S`` (any host). Only ``runs.status``/``finished_at``/``error`` change; every row the run stored
    stays. Returns the runs marked (run_id, kind)."""
    if not warehouse.path.exists():
        return []
    cutoff = datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S)
    with warehouse.reading() as con:
        has_identity = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'runs' "
                                   "AND column_name = 'pid'").fetchall()[0][0]
        identity = "host, pid, coalesce(heartbeat_at, started_at) < ?" if has_identity else \
            "NULL, NULL, started_at < ?"
        rows = con.execute(f"SELECT run_id, kind, {identity} FROM runs WHERE status = 'running'",
                           [cutoff]).fetchall()
    here = socket.gethostname()
    dead = [{"run_id": run_id, "kind": kind} for run_id, kind, host, pid, silent in rows
            if run_id != exclude and (silent or (host == here and pid is not None and not _alive(int(pid))))]
    if dead:
        with warehouse.writing() as con:
            con.execute("UPDATE runs SET status = 'crashed', finished_at = ?, error = ? WHERE status = 'running' "
                        "AND run_id IN (SELECT unnest(?))", [datetime.now(UTC), CRASHED, [d["run_id"] for d in dead]])
    return dead


def crash_in_prefect(run_ids: list[str], message: str = CRASHED) -> list[str]:
    """Set the Prefect flow runs of these (dead) runs to Crashed where they are not final yet; best effort (the API
    may be down or the run unknown to it). Returns those it set."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    marked = []
    try:
        with get_client(sync_client=True) as client:
            for run_id in run_ids:
                try:
                    flow_run_id = uuid.UUID(run_id)
                except ValueError:
                    continue  # a `sinq verify` run: not a Prefect flow run
                try:
                    state = client.read_flow_run(flow_run_id).state
                    if state is None or not state.is_final():
                        client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
                        marked.append(run_id)
                except Exception:  # unknown to this server: nothing to mark there
                    continue
    except Exception:
        return marked
    return marked
