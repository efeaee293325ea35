"""The classify suite (issue 13): exact accuracy, precision, recall and F1 on planted files from scripted backends
whose answers are known (greedy and majority-of-k, unparsable answers in the denominator), the Devign preset on a
Parquet file, malformed rows named, the F1 helper against hand-computed values, and the suite through a real tiny
model (+ a LoRA adapter) with the run stored and read back, also through the typer command.

Scripted backends are plain objects with the LLM backends' ``generate(requests)``: each finds the planted function
name in the prompt and replies what the test told it to."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from sinq.agents.llm import LLMRequest, LLMResult
from sinq.evals import classify
from sinq.evals.common import EvalError, record
from sinq.evals.compare import compare
from sinq.evals.config import EvalConfig
from sinq.game.errors import SinqError
from sinq.game.stats import bootstrap_f1, f1_score, wilson
from sinq.warehouse.evals import read_eval
from sinq.warehouse.store import Warehouse

NAME = re.compile(r"def (case_\w+)")


class Scripted:
    """Replies per planted function name: a list of texts (one per sample) or one text for every sample."""

    def __init__(self, replies: dict[str, str | list[str]]) -> None:
        self.replies = replies
        self.requests: list[LLMRequest] = []

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        self.requests += requests
        out = []
        for request in requests:
            reply = self.replies[NAME.search(request.messages[-1]["content"]).group(1)]
            texts = reply if isinstance(reply, list) else [reply] * request.n
            out.append(LLMResult(request_key=request.key(), texts=texts[:request.n],
                                 finish_reasons=["stop"] * request.n))
        return out


def _code(name: str) -> str:
    return f"def {name}(buf, n):\n    return buf[n]\n"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# four positives, four negatives; what the scripted model says about each, and the cell it lands in
PLANTED = [
    ("case_p1", 1, "Yes.", "tp"), ("case_p2", 1, "yes, the index is unchecked", "tp"),
    ("case_p3", 1, "No", "fn"), ("case_p4", 1, "I cannot tell.", "fn"),  # unparsable: wrong, still counted
    ("case_n1", 0, "No.", "tn"), ("case_n2", 0, "NO", "tn"), ("case_n3", 0, "Yes", "fp"),
    ("case_n4", 0, "no - bounds are checked", "tn"),
]


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "planted.jsonl", [{"code": _code(n), "label": y, "id": i}
                                               for i, (n, y, _, _) in enumerate(PLANTED)])


def test_greedy_figures_on_a_planted_file_are_exact(planted: Path) -> None:
    backend = Scripted({n: text for n, _, text, _ in PLANTED})
    run = classify.evaluate(planted, classify.layout_of(id_column="id"), "greedy", backend=backend, model="scripted")
    # tp = 2, fn = 2 (one of them unparsable), tn = 3, fp = 1, by hand from PLANTED
    assert run.n == 8 and len(run.items) == 8 and {r.query_index for r in run.results} == {0}
    assert {k: run.detail[k] for k in ("tp", "fp", "tn", "fn")} == {"tp": 2, "fp": 1, "tn": 3, "fn": 2}
    m = run.metrics
    assert m["accuracy"]["value"] == 5 / 8 and (m["accuracy"]["k"], m["accuracy"]["n"]) == (5, 8)
    assert (m["accuracy"]["low"], m["accuracy"]["high"]) == wilson(5, 8)[1:]
    assert m["precision"]["value"] == 2 / 3 and m["precision"]["n"] == 3
    assert m["recall"]["value"] == 1 / 2 and m["recall"]["n"] == 4
    assert m["f1"]["value"] == pytest.approx(4 / 7) and m["f1"]["low"] <= 4 / 7 <= m["f1"]["high"]
    assert m["answered"]["value"] == 7 / 8 and run.detail["unparsable"] == 1
    unparsable = [r for r in run.results if r.detail.get("reason") == "unparsable"]
    assert len(unparsable) == 1 and unparsable[0].correct is False and unparsable[0].detail["predicted"] is None
    # greedy: one sample at temperature 0, the preset-free question, the code fenced
    assert all(r.n == 1 and r.temperature == 0.0 for r in backend.requests)
    assert "Answer Yes or No" in backend.requests[0].messages[-1]["content"]
    assert run.items[0].origin == "planted.jsonl:0" and run.detail["positives"] == 4
    again = classify.evaluate(planted, classify.layout_of(id_column="id"), "greedy", backend=backend)
    assert again.metrics["f1"] == m["f1"]  # the bootstrap is seeded


def test_majority_of_k_votes_ties_and_stored_votes(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "votes.jsonl", [{"code": _code(n), "label": y} for n, y in
                                             [("case_a", 1), ("case_b", 1), ("case_c", 0), ("case_d", 0),
                                              ("case_e", 1)]])
    backend = Scripted({"case_a": ["Yes", "no", "Yes"],  # yes 2:1 → right
                        "case_b": ["Yes", "No", "hmm"],  # 1:1 → tie → wrong
                        "case_c": ["Yes", "Yes", "No"],  # yes on a negative → fp
                        "case_d": ["?", "??", "No"],  # one parsable vote: no → tn
                        "case_e": ["x", "y", "z"]})  # nothing parsable → wrong
    config = EvalConfig(classify_votes=3, temperature=0.7)
    run = classify.evaluate(path, None, "majority", config, backend=backend)
    assert all(r.n == 3 and r.temperature == 0.7 for r in backend.requests)
    by = {r.detail["row"]: r for r in run.results}
    assert [by[f"votes.jsonl:{i}"].correct for i in range(1, 6)] == [True, False, False, True, False]
    assert by["votes.jsonl:1"].detail["votes"] == [True, False, True] and by["votes.jsonl:1"].score == 2 / 3
    assert by["votes.jsonl:2"].detail["reason"] == "tie" and by["votes.jsonl:5"].detail["reason"] == "unparsable"
    assert run.detail["ties"] == 1 and "tie" in run.detail["tie_rule"]
    assert {k: run.detail[k] for k in ("tp", "fp", "tn", "fn")} == {"tp": 1, "fp": 1, "tn": 1, "fn": 2}
    assert run.metrics["accuracy"]["value"] == 2 / 5 and run.sampling["votes"] == 3
    assert run.metrics["f1"]["value"] == pytest.approx(2 / 5)  # 2·1 / (2·1 + 1 + 2)


def test_parse_answer_and_vote() -> None:
    assert classify.parse_answer("Yes") is True and classify.parse_answer(" no.") is False
    assert classify.parse_answer("No, yes") is False and classify.parse_answer("Answer: YES") is True
    assert classify.parse_answer("<think>no doubt</think>Yes") is True
    for text in ("", None, "yesterday", "not sure", "nope", "Nothing"):
        assert classify.parse_answer(text) is None
    assert classify.vote([True, None, False]) == (None, "tie")
    assert classify.vote([None, None]) == (None, "unparsable") and classify.vote([False]) == (False, None)


def test_devign_preset_on_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["case_v1", "case_v2", "case_v3", "case_s1", "case_s2"]
    path = tmp_path / "devign.parquet"
    pq.write_table(pa.table({"func": [_code(n) for n in names], "target": [1, 1, 1, 0, 0],
                             "idx": [10, 11, 12, 13, 14], "project": ["qemu"] * 5}), path)
    backend = Scripted(dict.fromkeys(names, "Yes"))  # a constant "vulnerable"
    run = classify.evaluate(path, classify.layout_of("devign"), "greedy", backend=backend, preset="devign")
    assert run.metrics["accuracy"]["value"] == 3 / 5 and run.metrics["precision"]["value"] == 3 / 5
    assert run.metrics["recall"]["value"] == 1.0 and run.metrics["f1"]["value"] == pytest.approx(0.75)
    assert run.items[0].origin == "devign.parquet:10" and run.detail["columns"]["code"] == "func"
    assert "C function" in backend.requests[0].messages[-1]["content"]
    assert "```c\n" in backend.requests[0].messages[-1]["content"]
    # the Hugging Face copy keeps target as a bool and names the id "id": the preset reads it too
    hf_layout = tmp_path / "hf.parquet"
    pq.write_table(pa.table({"func": [_code(n) for n in names], "target": [True, True, True, False, False],
                             "id": list(range(5))}), hf_layout)
    loaded = classify.load(hf_layout, classify.layout_of("devign"))
    assert [it.positive for it in loaded.items] == [True, True, True, False, False]
    assert loaded.items[0].row == "hf.parquet row 0"
    # flags override the preset: another code column, other positive values
    renamed = _jsonl(tmp_path / "renamed.jsonl", [{"source": _code("case_x"), "target": "bad"},
                                                  {"source": _code("case_y"), "target": "good"}])
    layout = classify.layout_of("devign", code_column="source", positive=["BAD"])
    assert [it.positive for it in classify.load(renamed, layout).items] == [True, False]
    assert classify.layout_of("pysecdb").code == "content" and classify.layout_of("pysecdb").positive == {"security"}


def test_pysecdb_preset_string_labels(tmp_path: Path) -> None:
    rows = [{"id": "a1", "label": "security", "content": _code("case_fix"), "source": "MITRE", "CVE-ID": "NA"},
            {"id": "a2", "label": "non-security", "content": _code("case_docs"), "source": "wild", "CVE-ID": "NA"}]
    path = _jsonl(tmp_path / "pysecdb.jsonl", rows)
    backend = Scripted({"case_fix": "Yes", "case_docs": "Yes"})
    run = classify.evaluate(path, classify.layout_of("pysecdb"), backend=backend, preset="pysecdb")
    assert run.metrics["accuracy"]["value"] == 1 / 2 and run.items[0].origin == "pysecdb.jsonl:a1"
    assert "commit patch" in backend.requests[0].messages[-1]["content"]
    _jsonl(path, [*rows, {**rows[0], "content": _code("case_x"), "label": "maybe"}])
    with pytest.raises(EvalError, match=r"pysecdb\.jsonl:3: label 'maybe' is in neither class"):
        classify.load(path, classify.layout_of("pysecdb"))


def test_malformed_rows_name_their_line_or_row(tmp_path: Path) -> None:
    devign = classify.layout_of("devign")
    missing = _jsonl(tmp_path / "missing.jsonl", [{"func": _code("case_a"), "target": 0},
                                                  {"code": _code("case_b"), "target": 1}])
    with pytest.raises(EvalError, match=r"missing\.jsonl:2: no column 'func'"):
        classify.load(missing, devign)
    unknown = _jsonl(tmp_path / "unknown.jsonl", [{"func": _code("case_a"), "target": 0}, {},
                                                  {"func": _code("case_c"), "target": 2}])
    unknown.write_text(unknown.read_text().replace("{}\n", "\n"))  # a blank line is skipped, numbering kept
    with pytest.raises(EvalError, match=r"unknown\.jsonl:3: label 2 is in neither class"):
        classify.load(unknown, devign)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"func": "x", "target": 0}\n{"func": \n')
    with pytest.raises(EvalError, match=r"broken\.jsonl:2: not a JSON object"):
        classify.load(broken, devign)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"func": [_code("case_a"), _code("case_b")], "target": [0, None]}), table)
    with pytest.raises(EvalError, match=r"labels\.parquet row 1: column 'target' is empty"):
        classify.load(table, devign)
    with pytest.raises(EvalError, match="no column 'uid'"):
        classify.load(missing, classify.layout_of(code_column="func", label_column="target", id_column="uid"))
    with pytest.raises(EvalError, match="does not exist"):
        classify.load(tmp_path / "absent.jsonl", devign)
    with pytest.raises(EvalError, match="unknown preset"):
        classify.layout_of("juliet")
    with pytest.raises(EvalError, match="not in the local Hugging Face cache"):
        classify.load("hf:sinq-tests/no-such-dataset:test", devign)


def test_duplicate_code_is_one_item(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "dups.jsonl", [{"code": _code("case_a"), "label": 1}, {"code": _code("case_a"),
                                                                                      "label": 0},
                                            {"code": _code("case_b"), "label": 0}])
    loaded = classify.load(path, classify.layout_of())
    assert len(loaded.items) == 2 and loaded.duplicates == 1 and loaded.conflicting == 1
    assert loaded.items[0].positive is True


def test_f1_helper_against_hand_computed_values() -> None:
    assert f1_score(2, 1, 2) == 4 / 7 and f1_score(5, 0, 0) == 1.0 and f1_score(0, 3, 2) == 0.0
    assert math.isnan(f1_score(0, 0, 0))
    truth = [True, True, True, True, False, False, False, False]
    said = [True, True, False, False, False, False, True, False]
    value, low, high = bootstrap_f1(truth, said, 500, 0.95, seed=3)
    assert value == 4 / 7 and 0 <= low <= value <= high <= 1
    assert bootstrap_f1(truth, said, 500, 0.95, seed=3) == (value, low, high)
    assert bootstrap_f1(truth, truth, 200) == (1.0, 1.0, 1.0)
    assert math.isnan(bootstrap_f1([False, False], [False, False], 100)[0])
    with pytest.raises(ValueError):
        bootstrap_f1([True], [True, False])


def test_stored_runs_compare_with_mcnemar(tmp_path: Path, planted: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    layout = classify.layout_of(id_column="id")
    a = record(warehouse, classify.evaluate(planted, layout, backend=Scripted({n: t for n, _, t, _ in PLANTED})))
    truth = Scripted({n: "Yes" if y else "No" for n, y, _, _ in PLANTED})
    b = record(warehouse, classify.evaluate(planted, layout, backend=truth))
    result = compare(warehouse, a, b)
    assert result["mcnemar"] == {"a_only": 0, "b_only": 3, "p_value": pytest.approx(0.25)}


# ---- a real tiny model


@pytest.fixture(scope="module")
def lora_adapter(tiny_model: Path, tmp_path_factory) -> Path:
    """A LoRA adapter whose weights are not zero (as tests/test_evals.py makes it)."""
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


def _six(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "six.jsonl", [{"func": _code(f"case_{i}"), "target": i % 2, "idx": i}
                                           for i in range(6)])


def test_through_the_tiny_model_stored_and_read_back(tiny_model: Path, tmp_path: Path) -> None:
    from sinq.agents.backends import make_backend
    from sinq.agents.config import AgentConfig

    backend = make_backend(AgentConfig(kind="llm", backend="transformers", model=str(tiny_model), device="cpu",
                                       cache=False))
    run = classify.evaluate(_six(tmp_path), classify.layout_of("devign"), "greedy", EvalConfig(classify_max_tokens=4),
                            backend=backend, model=str(tiny_model), preset="devign")
    print(f"classify greedy on the tiny model (CPU): {run.detail['items_per_s']} items/s")
    assert run.n == 6 and all(isinstance(r.correct, bool) for r in run.results)
    for name, m in run.metrics.items():
        assert 0 <= m["low"] <= m["high"] <= 1, name
        assert m["value"] is None or m["low"] <= m["value"] <= m["high"], name
    warehouse = Warehouse(tmp_path / "w.duckdb")
    eval_id = record(warehouse, run, "test")
    stored = read_eval(warehouse, eval_id)
    assert stored["suite"] == "classify" and stored["n"] == 6 and len(stored["results"]) == 6
    assert stored["metrics"]["accuracy"] == run.metrics["accuracy"] and stored["detail"]["preset"] == "devign"


def test_the_command_with_the_tiny_model_and_an_adapter(tiny_model: Path, lora_adapter: Path, tmp_path: Path
                                                       ) -> None:
    from sinq.eval_classify_cli import classify as command

    app = typer.Typer()
    app.command("classify")(command)
    db = tmp_path / "w.duckdb"
    shown = CliRunner().invoke(app, ["--file", str(_six(tmp_path)), "--preset", "devign", "--mode", "majority",
                                     "--votes", "2", "--temperature", "1.0", "--model", str(tiny_model),
                                     "--adapter", str(lora_adapter), "--device", "cpu", "--limit", "4",
                                     "--db", str(db), "--json"], env={"SINQ_CONFIG": ""})
    assert shown.exit_code == 0, shown.output
    figures = json.loads(shown.stdout)
    assert figures["suite"] == "classify" and figures["n"] == 4 and figures["mode"] == "majority"
    assert figures["adapter"] == str(lora_adapter) and set(figures["metrics"]) >= {"accuracy", "f1", "precision",
                                                                                   "recall"}
    stored = read_eval(Warehouse(db), figures["eval_id"])
    assert all(len(r["detail"]["votes"]) == 2 for r in stored["results"])
    refused = CliRunner().invoke(app, ["--file", str(_six(tmp_path)), "--mode", "vote", "--db", str(db)],
                                 env={"SINQ_CONFIG": ""})
    assert isinstance(refused.exception, SinqError) and "unknown mode" in str(refused.exception)
