"""One suite on one side (a model + adapter, or a role's agent on it), as `sinq eval` runs it: what the promotion
gate measures twice (candidate, incumbent) and the ``evaluate`` flow once. Models load on first use only, once per
process; model-written code runs only in the sandbox pool passed in."""

from __future__ import annotations

from pathlib import Path

from sinq.evals.common import EvalError, EvalRun, offline, record
from sinq.evals.config import EvalConfig, GateSuite
from sinq.sandbox.pool import WorkerPool
from sinq.warehouse.store import Warehouse


def side_of(row: dict | None, base_model: str) -> tuple[str, str | None]:
    """(model, adapter) an adapter row is evaluated as: a PEFT folder on its base model, a full fine-tune (no
    adapter_config.json) as the model itself; None is the base model alone."""
    if row is None:
        return base_model, None
    if Path(row["path"], "adapter_config.json").exists():
        return str(row["base_model"] or base_model), str(row["path"])
    return str(row["path"]), None


def label_of(spec: GateSuite, index: int, taken: set[str]) -> str:
    label = spec.suite if spec.file is None else f"{spec.suite}:{Path(spec.file).name}"
    return label if label not in taken else f"{label}#{index}"


class Models:
    """The models the suites need, loaded on first use only (a reused incumbent run loads nothing)."""

    def __init__(self, device: str | None = None, batch_size: int = 8) -> None:
        self.device = device
        self.batch_size = batch_size
        self.backends: dict[str, object] = {}
        self.scorers: dict[tuple[str, str | None], object] = {}

    def backend(self, model: str):
        if model not in self.backends:
            offline()
            from sinq.agents.backends import make_backend
            from sinq.agents.config import AgentConfig

            try:
                self.backends[model] = make_backend(AgentConfig(kind="llm", backend="transformers", model=model,
                                                                device=self.device, cache=False))
            except (OSError, ValueError) as exc:
                raise EvalError(f"cannot load {model!r} through transformers to evaluate it: "
                                f"{' '.join(str(exc).split())[:300]}",
                                hint="suites run the model locally (the gate: or [eval.gate] enabled = false)") from exc
        return self.backends[model]

    def scorer(self, model: str, adapter: str | None):
        if (model, adapter) not in self.scorers:
            from sinq.evals.identifier_swap import TransformersScorer

            self.scorers[(model, adapter)] = TransformersScorer(model, adapter, self.device, self.batch_size)
        return self.scorers[(model, adapter)]

    def agent(self, role: str, model: str, adapter: str | None, config: EvalConfig):
        """The role's LLM agent on a loaded model (+ adapter), with the game suite's sampling."""
        from sinq.agents.config import AgentConfig
        from sinq.agents.llm_agents import LLMEvaluator, LLMGenerator
        from sinq.evals.game import sampled

        agent_config = sampled(AgentConfig(kind="llm", backend="transformers", model=model, adapter=adapter,
                                           device=self.device, cache=False), config)
        return (LLMGenerator if role == "generator" else LLMEvaluator)(self.backend(model), agent_config)


def equivalence_evaluator(models: Models, model: str, adapter: str | None, config: EvalConfig):
    """The LLM evaluator on a loaded model (+ adapter) with the equivalence suite's sampling (greedy by default)."""
    from sinq.agents.config import AgentConfig
    from sinq.agents.llm_agents import LLMEvaluator
    from sinq.evals.equivalence import llm_sampling

    agent_config = AgentConfig(kind="llm", backend="transformers", model=model, adapter=adapter, device=models.device,
                               cache=False, sampling=llm_sampling(config))
    return LLMEvaluator(models.backend(model), agent_config)


def run_equivalence(spec: GateSuite, pool: WorkerPool, config: EvalConfig, evaluator, model: str | None,
                    adapter: str | None, role: str | None, splits=None, warehouse: Warehouse | None = None
                    ) -> EvalRun:
    """The equivalence suite as a gate suite: the spec's file, or else the frozen held-out set of both kinds."""
    from sinq.evals import equivalence

    if spec.file is not None:
        loaded = equivalence.load_files([Path(spec.file)], config.equivalence, limit=spec.limit)
    else:
        loaded = equivalence.gather(config, [], warehouse, splits, spec.limit)
    return equivalence.evaluate(pool, loaded, evaluator, config, model=model, adapter=adapter, role=role,
                                limit=spec.limit)


def reference_evaluator(config: EvalConfig, pool: WorkerPool):
    """The pinned evaluator that measures generator samples in the game suite (never cached: it is re-asked)."""
    from sinq.agents.backends import make_evaluator

    reference = config.game.reference
    if reference.kind == "llm":
        reference = reference.model_copy(update={"cache": False, "replay": False})
    return make_evaluator(reference, config.game.reference_baseline, pool)


def run_suite(spec: GateSuite, pool: WorkerPool, config: EvalConfig, models: Models, model: str,
              adapter: str | None, role: str, splits=None, warehouse: Warehouse | None = None,
              frozen_set: dict | None = None) -> EvalRun:
    """One suite on one side (model + adapter), as `sinq eval` would run it."""
    if spec.suite == "game":
        from sinq.evals import game

        assert frozen_set is not None and warehouse is not None
        agent = models.agent(role, model, adapter, config)
        if role == "evaluator":
            return game.evaluate_evaluator(pool, frozen_set, agent, config, model=model, adapter=adapter, role=role,
                                           limit=spec.limit)
        return game.evaluate_generator(pool, frozen_set, agent, reference_evaluator(config, pool), warehouse, config,
                                       model=model, adapter=adapter, role=role, limit=spec.limit)
    if spec.suite == "equivalence":
        if role != "evaluator":
            raise EvalError(f"the equivalence suite measures the evaluator, not the {role}")
        return run_equivalence(spec, pool, config, equivalence_evaluator(models, model, adapter, config), model,
                               adapter, role, splits, warehouse)
    if spec.suite == "humaneval":
        from sinq.evals import humaneval

        return humaneval.evaluate(pool, config, backend=models.backend(model), model=model, adapter=adapter,
                                  split=spec.split, splits=splits, limit=spec.limit, role=role)
    from sinq.evals import identifier_swap

    assert spec.file is not None
    if spec.mode == "loglikelihood":
        return identifier_swap.evaluate(Path(spec.file), "loglikelihood", config, scorer=models.scorer(model, adapter),
                                        model=model, adapter=adapter, limit=spec.limit, role=role)
    return identifier_swap.evaluate(Path(spec.file), "generate", config, backend=models.backend(model), model=model,
                                    adapter=adapter, limit=spec.limit, role=role)


def skip_reason(spec: GateSuite, frozen_set: dict | None, *, role: str | None = None,
                warehouse: Warehouse | None = None, splits=None, config: EvalConfig | None = None) -> str | None:
    """Why a configured suite cannot be measured here (it is then skipped and the decision says so). The
    equivalence suite is checked only when ``role`` (and, without a file, ``warehouse``) is given."""
    if spec.suite == "equivalence":
        if role is not None and role != "evaluator":
            return f"the equivalence suite measures the evaluator, not the {role}"
        if spec.file is None and warehouse is not None:
            from sinq.evals.equivalence import frozen_or_freeze

            eq = (config or EvalConfig()).equivalence
            if not warehouse.path.exists() or frozen_or_freeze(warehouse, eq, splits) is None:
                return ("no file given and no equivalent or verified pair of a held-out problem to freeze a set "
                        "from")
        return None
    if spec.suite == "identifier-swap" and spec.file is None:
        return "no file given ([[eval.gate.suites]] file = \"swap.csv\")"
    if spec.suite == "game" and frozen_set is None:
        return ("no frozen game set and no verified pair of a held-out problem to freeze one from (sinq eval "
                "freeze after a run)")
    return None


def side_for_role(warehouse: Warehouse, role: str, model: str | None, adapter_id: str | None = None
                  ) -> tuple[str, str | None, str | None]:
    """(model, adapter, adapter_id) a role is measured as: the registered ``adapter_id``, else the role's promoted
    adapter, else the base ``model`` alone."""
    from sinq.warehouse.adapters import adapter as adapter_row
    from sinq.warehouse.adapters import promoted

    try:
        row = adapter_row(warehouse, role, adapter_id) if adapter_id else promoted(warehouse, role)
    except KeyError as exc:
        raise EvalError(str(exc.args[0]), hint="sinq models list shows the registered adapters") from None
    base = model or (str(row["base_model"]) if row is not None and row["base_model"] else None)
    if not base:
        raise EvalError(f"no model for the {role}: set [agents.{role}] model (or [training] base_model)")
    chosen_model, chosen_adapter = side_of(row, base)
    return chosen_model, chosen_adapter, row["adapter_id"] if row is not None else None


def measure(warehouse: Warehouse, pool: WorkerPool, config: EvalConfig, role: str, model: str, adapter: str | None,
            suites: list[GateSuite], splits=None, code_version: str | None = None) -> list[dict]:
    """Each suite once on ``model`` + ``adapter`` playing ``role``, every run stored; a suite that cannot be
    measured here is listed with its reason. Returns one summary per suite (``label``, ``headline``, the run's
    ``--json`` shape or ``skipped``)."""
    from sinq.evals.game import frozen_or_freeze

    frozen_set = frozen_or_freeze(warehouse, config.game, splits) if any(s.suite == "game" for s in suites) else None
    models = Models(config.gate.device, config.batch_size)
    found, taken = [], set()
    for index, spec in enumerate(suites):
        label = label_of(spec, index, taken)
        taken.add(label)
        skipped = skip_reason(spec, frozen_set, role=role, warehouse=warehouse, splits=splits,
                              config=config)
        if skipped is None and spec.file is not None and not Path(spec.file).exists():
            skipped = f"{spec.file} does not exist"
        if skipped:
            found.append({"label": label, "suite": spec.suite, "headline": spec.headline, "skipped": skipped})
            continue
        run = run_suite(spec, pool, config, models, model, adapter, role, splits, warehouse, frozen_set)
        record(warehouse, run, code_version)
        found.append({"label": label, "headline": spec.headline, **run.summary()})
    return found
