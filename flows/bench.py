"""``sinq pipeline bench``: what Prefect costs on a nightly run. Orchestration is the run's wall time during which
no stage was working at all (wall less the union of the work's spans); its share of the wall must stay ≤ 10 %."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from sinq.flows.config import RunConfig
from sinq.sandbox.config import SandboxConfig
from sinq.settings import Settings
from sinq.sources.loaders import load
from sinq.warehouse.config import WarehouseConfig

WORK_STAGES = ("source", "generate", "evaluate", "audit", "summary", "export")
"""Work: the stages' task bodies, wherever they ran (the flow process's planning reads and batch writes are spans
of ``timings.busy`` too, but hold no task slot, so they are reported beside the work). Batches play concurrently
(up to ``[run] sandbox_slots``, generate and evaluate overlapping), so their seconds add up to more than the time
they cover: the flow reports the covered time (``timings.busy``, the union of the spans), and
orchestration is the wall less that. The task bodies' summed seconds give the other figure, the idle share of the
task slots."""


def repeated_problems(path: Path, count: int) -> Path:
    """HumanEval's valid problems repeated up to ``count`` under distinct ids (a file source, MBPP-style). Each copy
    opens with its own module docstring, so the loader's AST dedupe keeps it (mutants never touch docstrings: the
    work per copy is the original's)."""
    problems = [p for p in load("humaneval") if p.reason is None]
    with path.open("w") as handle:
        for i in range(count):
            p = problems[i % len(problems)]
            # tests call the entry point by name (not through `candidate`), so seed inputs are found as usual
            tests = p.tests.replace("candidate", p.entry_point or "candidate")
            code = f'"""Benchmark copy {i} of {p.source_id}."""\n{p.code}'
            handle.write(json.dumps({"task_id": f"bench-{i}", "text": p.text, "code": code,
                                     "test_list": tests, "entry_point": p.entry_point}) + "\n")
    return path


def pipeline_bench(problems: int = 1000, samples: int = 10, batch_size: int = 50,
                   sandbox: SandboxConfig | None = None) -> dict:
    from sinq.flows import server
    from sinq.flows.nightly import for_settings

    server.ensure_api()
    with tempfile.TemporaryDirectory(prefix="sinq-pipeline-bench-") as tmp:
        source = repeated_problems(Path(tmp, "problems.jsonl"), problems)
        settings = Settings(sandbox=sandbox or SandboxConfig(), warehouse=WarehouseConfig(path=Path(tmp, "b.duckdb")),
                            run=RunConfig(source=f"file:{source}", batch_size=batch_size, export_dir=Path(tmp, "x")))
        settings.agents.pairs_per_problem = samples
        flow = for_settings(settings)
        started = time.perf_counter()
        summary = flow(settings.model_dump(mode="json"))
        wall = time.perf_counter() - started
    timings = summary["timings"]
    work = sum(timings.get(stage, 0.0) for stage in WORK_STAGES)
    orchestration = wall - timings["busy"]
    return {"wall_seconds": round(wall, 2), "busy_seconds": round(timings["busy"], 2),
            "orchestration_seconds": round(orchestration, 2), "overhead_share": round(orchestration / wall, 4),
            "work_seconds": round(work, 2), "slots": settings.run.sandbox_slots,
            "slot_idle_share": round(1 - work / (wall * settings.run.sandbox_slots), 4),
            "problems": summary["problems"], "samples": summary["samples"],
            "verified_pairs": summary["verified_pairs"], "batches": -(-summary["problems"] // batch_size),
            "warehouse_seconds": round(timings.get("warehouse", 0.0), 2),
            "stage_seconds": {k: v for k, v in timings.items() if k in WORK_STAGES}}
