"""`sinq eval freeze`, `sinq eval sets` and `sinq eval game`: the held-out game suite (registered in
sinq/eval_cli.py). Freezing copies verified pairs of held-out problems into a content-hashed set; `game` plays a
role's agent (an LLM, or the model-free baseline as a reference figure) on it, every claim settled in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

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
    _warehouse,
    _writable_warehouse,
    offline,
    out,
)
from sinq.settings import load_settings


def _game_config(settings, **flags: object):
    config = settings.eval
    game = config.game.model_copy(update={k: v for k, v in flags.items() if v is not None})
    return config.model_copy(update={"game": game})


def freeze(
    name: Annotated[str | None, typer.Option("--name", help="a label kept with the set")] = None,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="pairs at most (default [eval.game] "
                                                  "freeze_max_pairs)")] = None,
    per_problem: Annotated[int | None, typer.Option("--per-problem", min=1, help="pairs per problem at most")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="which pairs are chosen when there are more")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Freeze the verified pairs of held-out problems into a content-hashed game set (kept out of training)."""
    from sinq.evals.game import freeze as run_freeze

    settings = load_settings(config)
    eval_config = _game_config(settings, freeze_max_pairs=max_pairs, freeze_per_problem=per_problem,
                               freeze_seed=seed)
    warehouse = _writable_warehouse(settings, db)
    result = run_freeze(warehouse, eval_config.game, settings.sources.split, name,
                        settings.training.build.held_out_splits)
    if json_out:
        print(json.dumps(result, default=str))
        return
    state = "frozen" if result["created"] else "already frozen (same content)"
    out.print(f"game set {result['set_id']} {state}: {result['pairs']} pairs of {result['problems']} held-out "
              f"problems (of {result['held_out_pairs']} held-out pairs; {result['left_out_trained_problems']} "
              f"trained problems left out); by difficulty {result['by_difficulty']}")


def sets(db: DbOpt = None, config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """The frozen game sets, oldest first (the newest is `latest`)."""
    from sinq.warehouse.evals import list_sets

    found = list_sets(_warehouse(load_settings(config), db))
    if json_out:
        print(json.dumps(found, default=str))
        return
    table = Table("set_id", "name", "pairs", "problems", "by difficulty", "created")
    for s in found:
        table.add_row(escape(s["set_id"]), escape(s["name"] or ""), str(s["pairs"]), str(s["problems"]),
                      json.dumps(s["detail"].get("by_difficulty", {})), str(s["created_at"])[:19])
    out.print(table)


def _agent(settings, warehouse, pool, role: str, model: Path | None, adapter: Path | None, agent: str | None,
           device: str | None, eval_config):
    """(agent, model, adapter) to play: --model (transformers), the role's configured LLM agent, or the baseline."""
    from sinq.agents.backends import make_backend, make_evaluator, make_generator
    from sinq.agents.llm_agents import LLMEvaluator, LLMGenerator
    from sinq.evals.game import sampled

    configured = getattr(settings.agents, role)
    if model is None and agent is not None and configured.kind == "baseline":
        make = make_generator if role == "generator" else make_evaluator
        return make(configured, settings.agents.baseline, pool), None, None
    agent_config = _agent_config(settings, warehouse, model, adapter, agent, device, eval_config.batch_size)
    if agent_config is None:
        raise EvalError("no agent: give --model PATH (with --mode) or --agent ROLE")
    agent_config = sampled(agent_config, eval_config)
    offline()
    backend = make_backend(agent_config)
    cls = LLMGenerator if role == "generator" else LLMEvaluator
    return cls(backend, agent_config), agent_config.model, agent_config.adapter


def game(
    mode: Annotated[str | None, typer.Option("--mode", help="evaluator | generator: the role played (default: "
                                             "--agent's role)")] = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    agent: Annotated[str | None, typer.Option("--agent", help="play a role's configured agent: generator | "
                                              "evaluator (the baseline too, as a reference figure)")] = None,
    set_id: Annotated[str | None, typer.Option("--set", help="the frozen set (default [eval.game] set: latest)")
                      ] = None,
    answers: Annotated[int | None, typer.Option("--answers", min=1, help="evaluator answers per pair")] = None,
    samples: Annotated[int | None, typer.Option("--samples", min=1, help="generator variants per problem")] = None,
    limit: LimitOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    backend: SandboxOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Held-out game: the evaluator's success rate on a frozen set, or the generator's validity and difficulty
    against the pinned reference evaluator on its held-out problems."""
    from sinq.evals import game as suite
    from sinq.evals.common import record
    from sinq.evals.suites import reference_evaluator
    from sinq.sandbox import open_backend

    if mode is not None and mode not in suite.MODES:
        raise EvalError(f"unknown mode {mode!r} ({' | '.join(suite.MODES)})")
    if agent is not None and agent not in suite.MODES:
        raise EvalError(f"unknown agent {agent!r} ({' | '.join(suite.MODES)})")
    role = mode or agent
    if role is None:
        raise EvalError(f"say which role plays: --mode {' | '.join(suite.MODES)} (or --agent ROLE)")
    if agent is not None and mode is not None and agent != mode:
        raise EvalError(f"--agent {agent} plays the {agent}: it cannot be measured as the {mode}")
    settings = load_settings(config)
    eval_config = _game_config(settings, set=set_id, answers=answers, samples=samples)
    if seed is not None:
        eval_config = eval_config.model_copy(update={"seed": seed})
    warehouse = _writable_warehouse(settings, db)
    frozen_set = suite.frozen(warehouse, eval_config.game.set)
    with open_backend(_sandbox(settings, backend)) as pool:
        player, model_name, adapter_name = _agent(settings, warehouse, pool, role, model, adapter, agent, device,
                                                  eval_config)
        if role == "evaluator":
            run = suite.evaluate_evaluator(pool, frozen_set, player, eval_config, model=model_name,
                                           adapter=adapter_name, role=agent or role, limit=limit)
        else:
            run = suite.evaluate_generator(pool, frozen_set, player, reference_evaluator(eval_config, pool),
                                           warehouse, eval_config, model=model_name, adapter=adapter_name,
                                           role=agent or role, limit=limit)
    if model_name is None:
        run.model = f"baseline:{player.name}"
    record(warehouse, run, code_version())
    _show(run.summary(), json_out, warehouse.path)
