"""`sinq eval classify`: binary code classification (vulnerability detection) of a model on a local file or a cached
Hugging Face dataset; registered in sinq/eval_cli.py with ``app.command("classify")(classify)``. Its own module so
that the suite's many column-map flags stay out of the shared CLI file."""

from __future__ import annotations

from typing import Annotated

import typer

from sinq import code_version
from sinq.eval_cli import (
    AdapterOpt,
    AgentOpt,
    ConfigOpt,
    DbOpt,
    DeviceOpt,
    EvalError,
    JsonOpt,
    LimitOpt,
    ModelOpt,
    SeedOpt,
    _agent_config,
    _backend,
    _eval_config,
    _show,
    _writable_warehouse,
)
from sinq.settings import load_settings


def classify(
    file: Annotated[str, typer.Option("--file", help="JSONL / JSON / Parquet file, or hf:NAME[:SPLIT] from the local "
                                      "Hugging Face cache (nothing is downloaded)")],
    preset: Annotated[str | None, typer.Option("--preset", help="column map and question: devign (func, target "
                                               "0/1, idx) | pysecdb (content, label security/non-security, id)")
                      ] = None,
    code_column: Annotated[str | None, typer.Option("--code-column", help="the column holding the code")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="the column holding the label")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="a row id column (names the items)")] = None,
    positive: Annotated[list[str] | None, typer.Option("--positive", help="a label value of the positive class "
                                                       "(repeatable; every other value is then negative unless "
                                                       "--negative is given)")] = None,
    negative: Annotated[list[str] | None, typer.Option("--negative", help="a label value of the negative class "
                                                       "(repeatable; any other label is then an error)")] = None,
    question: Annotated[str | None, typer.Option("--question", help="the Yes/No question asked about the code "
                                                 "(default: the preset's)")] = None,
    mode: Annotated[str, typer.Option("--mode", help="greedy (one answer at temperature 0) | majority (--votes "
                                      "samples at [eval] temperature, a tie counts wrong)")] = "greedy",
    votes: Annotated[int | None, typer.Option("--votes", min=1, help="answers per item in majority mode (default "
                                              "[eval] classify_votes)")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0, help="majority mode's sampling "
                                                      "temperature (default [eval] temperature)")] = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    agent: AgentOpt = None,
    limit: LimitOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Binary code classification: a Yes/No question per item; accuracy, F1, precision and recall of the positive
    class, each item one stored query."""
    from sinq.evals import classify as suite
    from sinq.evals.common import record

    settings = load_settings(config)
    if mode not in suite.MODES:
        raise EvalError(f"unknown mode {mode!r} ({' | '.join(suite.MODES)})")
    if votes is not None and mode != "majority":
        raise EvalError("--votes is for --mode majority")
    layout = suite.layout_of(preset, code_column=code_column, label_column=label_column, id_column=id_column,
                             positive=positive, negative=negative, question=question)
    loaded = suite.load(file, layout, limit)  # a bad file fails before a model loads
    warehouse = _writable_warehouse(settings, db)
    eval_config = _eval_config(settings, seed=seed, classify_votes=votes, temperature=temperature)
    agent_config = _agent_config(settings, warehouse, model, adapter, agent, device, eval_config.batch_size)
    if agent_config is None:
        raise EvalError("no model: give --model PATH or --agent ROLE")
    run = suite.evaluate(file, layout, mode, eval_config, backend=_backend(agent_config), model=agent_config.model,
                         adapter=agent_config.adapter, role=agent, preset=preset, loaded=loaded)
    record(warehouse, run, code_version())
    _show(run.summary(), json_out, warehouse.path)
