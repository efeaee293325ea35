"""`sinq eval equivalence`: the evaluator on program pairs labelled equivalent or inequivalent (EquiBench-style files
with a column map, and our own frozen held-out pairs of both kinds); accuracy, per-class recall and the false-alarm
rate. Registered in sinq/cli.py with ``eval_cli.app.command("equivalence")(equivalence)``; its own module so that
the column-map flags stay out of the shared CLI file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sinq import code_version
from sinq.eval_cli import (
    AdapterOpt,
    ConfigOpt,
    DbOpt,
    DeviceOpt,
    EvalError,
    JsonOpt,
    LimitOpt,
    ModelOpt,
    SandboxOpt,
    SeedOpt,
    _agent_config,
    _sandbox,
    _show,
    _writable_warehouse,
    offline,
)
from sinq.settings import load_settings


def _equivalence_config(settings, columns: dict, seed: int | None, **flags: object):
    """``[eval]`` with ``[eval.equivalence]`` and its column map overridden by the flags given."""
    config = settings.eval
    eq = config.equivalence
    cols = eq.columns.model_copy(update={k: v for k, v in columns.items() if v is not None})
    eq = eq.model_copy(update={"columns": cols, **{k: v for k, v in flags.items() if v is not None}})
    eq = type(eq).model_validate(eq.model_dump())  # label values in both classes fail here, before any model loads
    update: dict = {"equivalence": eq} | ({"seed": seed} if seed is not None else {})
    return config.model_copy(update=update)


def _evaluator(settings, warehouse, pool, model: Path | None, adapter: Path | None, agent: str | None,
               device: str | None, eval_config):
    """(evaluator, model, adapter): --model (transformers), the configured LLM evaluator, or the baseline."""
    from sinq.agents.backends import make_backend, make_evaluator
    from sinq.agents.llm_agents import LLMEvaluator
    from sinq.evals.equivalence import llm_sampling

    if agent is not None and agent != "evaluator":
        raise EvalError(f"the equivalence suite measures the evaluator, not the {agent}")
    configured = settings.agents.evaluator
    if model is None and agent is not None and configured.kind == "baseline":
        return make_evaluator(configured, settings.agents.baseline, pool), None, None
    agent_config = _agent_config(settings, warehouse, model, adapter, agent, device, eval_config.batch_size)
    if agent_config is None:
        raise EvalError("no evaluator: give --model PATH or --agent evaluator (the baseline too)")
    agent_config = agent_config.model_copy(update={"sampling": llm_sampling(eval_config)})
    offline()
    return LLMEvaluator(make_backend(agent_config), agent_config), agent_config.model, agent_config.adapter


def equivalence(
    file: Annotated[list[Path] | None, typer.Option("--file", help="labelled pairs: .jsonl / .json / .parquet / "
                                                    ".csv (repeatable; default [eval.equivalence] files)")] = None,
    program_1_column: Annotated[str | None, typer.Option("--program-1-column", help="column of the first "
                                                         "program")] = None,
    program_2_column: Annotated[str | None, typer.Option("--program-2-column", help="column of the second "
                                                         "program")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="column of the label")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="a row id column (names the items)")] = None,
    entry_point_column: Annotated[str | None, typer.Option("--entry-point-column", help="column of the entry "
                                                           "point (default: the one function both define)")] = None,
    inputs_column: Annotated[str | None, typer.Option("--inputs-column", help="column of seed inputs (a list of "
                                                      "keyword dicts)")] = None,
    equivalent_value: Annotated[list[str] | None, typer.Option("--equivalent", help="a label value of an "
                                                               "equivalent pair (repeatable; replaces the list)")
                                ] = None,
    inequivalent_value: Annotated[list[str] | None, typer.Option("--inequivalent", help="a label value of an "
                                                                 "inequivalent pair (repeatable; replaces the "
                                                                 "list)")] = None,
    use_warehouse: Annotated[bool | None, typer.Option("--warehouse/--no-warehouse", help="also the frozen set "
                                                       "of our held-out pairs (default [eval.equivalence] "
                                                       "warehouse)")] = None,
    set_id: Annotated[str | None, typer.Option("--set", help="that frozen set (default latest: frozen now when "
                                               "none exists)")] = None,
    answers: Annotated[int | None, typer.Option("--answers", min=1, help="evaluator answers per pair")] = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    agent: Annotated[str | None, typer.Option("--agent", help="evaluator: the configured evaluator (the "
                                              "model-free baseline too, as a reference figure)")] = None,
    limit: LimitOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    backend: SandboxOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Equivalence benchmark: the evaluator's Yes/No on labelled pairs, every claimed input settled in the sandbox;
    accuracy, recall of each class, false-alarm and miss rates, each query stored."""
    from sinq.evals import equivalence as suite
    from sinq.evals.common import record
    from sinq.sandbox import open_backend

    settings = load_settings(config)
    columns = {"program_1": program_1_column, "program_2": program_2_column, "label": label_column,
               "id": id_column, "entry_point": entry_point_column, "inputs": inputs_column}
    eval_config = _equivalence_config(settings, columns, seed, equivalent_labels=equivalent_value,
                                      inequivalent_labels=inequivalent_value, warehouse=use_warehouse, set=set_id,
                                      answers=answers)
    warehouse = _writable_warehouse(settings, db)
    loaded = suite.gather(eval_config, file, warehouse if eval_config.equivalence.warehouse else None,
                          settings.sources.split, limit, settings.training.build.held_out_splits)
    with open_backend(_sandbox(settings, backend)) as pool:
        evaluator, model_name, adapter_name = _evaluator(settings, warehouse, pool, model, adapter, agent, device,
                                                         eval_config)
        run = suite.evaluate(pool, loaded, evaluator, eval_config, model=model_name, adapter=adapter_name,
                             role=agent or "evaluator", limit=limit)
    if model_name is None:
        run.model = f"baseline:{evaluator.name}"
    record(warehouse, run, code_version())
    _show(run.summary(), json_out, warehouse.path)
