"""Audits, the pair viewer and the export card on real data: a nightly run on HumanEval under a real Prefect server
(the fixture), the real sandbox, a real DuckDB file; `sinq audit` as a user runs it; planted false claims."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from sinq.flows.config import RunConfig
from sinq.sandbox.outcome import Verdict
from sinq.sandbox.verify import Pair, verify_many
from sinq.settings import Settings
from sinq.tasks.audit import AUDIT_SEED_BASE, sample_ids
from sinq.warehouse.config import WarehouseConfig
from sinq.warehouse.records import content_id, equivalent_pair_rows, merge, pair_rows, verdict_rows
from sinq.warehouse.store import Warehouse
from tests.conftest import fast_config

ROOT = Path(__file__).resolve().parent.parent


def sinq(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, "SINQ_CONFIG": "", "COLUMNS": "250", **(env or {})})


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def humaneval_run(prefect_server, local_backend, tmp_path_factory):
    from sinq.flows.nightly import for_settings

    tmp = tmp_path_factory.mktemp("audit-run")
    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp / "w.duckdb"),
                        run=RunConfig(limit=16, batch_size=8, export_dir=tmp / "exports", audit_sample=5))
    summary = for_settings(settings)(settings.model_dump(mode="json"))
    return settings, summary


def test_sample_is_seeded_and_deterministic() -> None:
    ids = [content_id("pair", i) for i in range(50)]
    first = sample_ids(ids, 7, "night-1")
    assert len(first) == 7 and set(first) <= set(ids)
    assert sample_ids(list(reversed(ids)), 7, "night-1") == first
    assert sample_ids(ids, 7, "night-2") != first
    assert sample_ids(ids, None, "x") == sorted(ids)


def test_nightly_audits_a_sample_and_reports_it(humaneval_run):
    settings, summary = humaneval_run
    audit = summary["audit"]
    assert summary["verified_pairs"] >= 5 and summary["equivalent_pairs"] >= 5
    assert audit["checked"] == 10 and audit["reproduced"] == 10 and audit["not_reproduced"] == 0
    assert {kind: figures["checked"] for kind, figures in audit["kinds"].items()} == {"inequivalent": 5,
                                                                                       "equivalent": 5}
    assert audit["answers"]["checked"] >= 5 and audit["answers"]["not_reproduced"] == 0
    assert set(audit["hash_seeds"]).isdisjoint(settings.sandbox.hash_seeds)
    stored = rows(settings.warehouse.path, "SELECT subject, count(*), bool_and(reproduced), any_value(run_id) "
                  "FROM audits WHERE audit_run = ? GROUP BY 1 ORDER BY 1", [f"audit-{summary['run_id']}"])
    assert stored == [("answer", audit["answers"]["checked"], True, summary["run_id"]),
                      ("pair", 10, True, summary["run_id"])]
    # an equivalent pair's audit settled every input it was fuzzed on, not only the first
    checked = rows(settings.warehouse.path, "SELECT CAST(json_extract(a.detail, '$.inputs_checked') AS INTEGER), "
                   "e.inputs_tried FROM audits a JOIN equivalence_evidence e USING (pair_id) WHERE a.audit_run = ? "
                   "AND a.subject = 'pair'", [f"audit-{summary['run_id']}"])
    assert len(checked) == 5 and all(n == tried and tried >= 1 for n, tried in checked)
    assert sum(tried for _, tried in checked) > 5


def test_audit_all_reproduces_every_verified_pair(humaneval_run):
    settings, _ = humaneval_run
    db = settings.warehouse.path
    verified = rows(db, "SELECT count(*) FROM verified_pairs")[0][0]
    equivalent = rows(db, "SELECT count(*) FROM equivalent_pairs")[0][0]
    answers = rows(db, "SELECT count(*) FROM evaluator_answers a WHERE a.counted AND a.verdict_id IS NOT NULL AND "
                   "a.pair_id IN (SELECT pair_id FROM verified_pairs UNION SELECT pair_id FROM equivalent_pairs)"
                   )[0][0]
    done = sinq("audit", "--all", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert verified >= 5 and equivalent >= 5 and answers >= verified
    total = verified + equivalent
    assert (result["checked"], result["reproduced"], result["not_reproduced"]) == (total, total, 0)
    assert result["kinds"]["equivalent"]["checked"] == equivalent
    assert result["answers"] == {"checked": answers, "reproduced": answers, "not_reproduced": 0, "by_reason": {}}
    assert result["backend"] == "local" and result["run_hash_seeds"] == [1, 2]
    assert result["hash_seeds"] == [AUDIT_SEED_BASE, AUDIT_SEED_BASE + 1]
    assert rows(db, "SELECT count(*), count(DISTINCT audit_id) FROM audits WHERE audit_run = ?",
                [result["audit_run"]])[0] == (total + answers, total + answers)
    assert rows(db, "SELECT kind, status FROM runs WHERE run_id = ?", [result["audit_run"]]) == [("audit", "completed")]
    assert rows(db, "SELECT count(*) FROM verified_pairs")[0][0] == verified
    assert rows(db, "SELECT count(*) FROM equivalent_pairs")[0][0] == equivalent


def test_audit_on_the_docker_backend(humaneval_run, docker_backend):
    settings, _ = humaneval_run
    db = settings.warehouse.path
    verified = rows(db, "SELECT count(*) FROM verified_pairs")[0][0]
    equivalent = rows(db, "SELECT count(*) FROM equivalent_pairs")[0][0]
    done = sinq("audit", "--all", "--backend", "docker", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["backend"] == "docker"
    assert (result["checked"], result["not_reproduced"]) == (verified + equivalent, 0)
    assert result["kinds"]["equivalent"] == {"checked": equivalent, "reproduced": equivalent, "not_reproduced": 0,
                                             "by_reason": {}}
    assert result["answers"]["checked"] > 0 and result["answers"]["not_reproduced"] == 0


def _artifact(run_id: str, key: str):
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)])))
    return artifact.data


def test_pair_viewer_artifact_shows_diffs_inputs_and_outcomes(humaneval_run):
    settings, summary = humaneval_run
    text = _artifact(summary["run_id"], "pair-viewer")
    assert "```diff\n--- original\n+++ variant\n@@" in text
    shown = re.findall(r"^pair `([0-9a-f]{64})`", text, flags=re.M)
    assert len(shown) == min(6, summary["verified_pairs"]) and len(set(shown)) == len(shown)
    stored = {r[0]: r[1:] for r in rows(
        settings.warehouse.path, "SELECT pair_id, diverging_input, difficulty, CAST(original_outcome AS VARCHAR) "
        "FROM verified_pairs WHERE run_id = ?", [summary["run_id"]])}
    assert set(shown) <= set(stored)
    for pair_id in shown:
        literal, _, original = stored[pair_id]
        assert literal in text
        assert json.loads(original)["kind"] in text
    assert stored[shown[0]][1] == max(d for _, d, _ in stored.values())
    assert "\n| original | " in text and "\n| variant | " in text


def test_summary_artifact_carries_the_audit_figure(humaneval_run):
    _, summary = humaneval_run
    text = _artifact(summary["run_id"], "nightly-summary")
    assert "## Audit" in text and f"| checked | {summary['audit']['checked']} |" in text


# ---- planted claims
def _store_pair(warehouse: Warehouse, run_id: str, pair: Pair, verdict: Verdict, flags: list[str] | None = None,
                answers: list[tuple[str, Verdict, bool]] = ()) -> str:
    """Store a pair as the pipeline would, from a verdict given here (a forged one plants a false claim), with
    counted evaluator answers (input, the answer's verdict, the diverged flag stored for it)."""
    batch = verdict_rows(pair, verdict, run_id, "strict")
    [row] = pair_rows(batch, "generator:test", 0)
    row["flags"] = json.dumps(flags) if flags else None
    batch["pairs"] = [row]
    answer_rows = []
    for index, (literal, answer_verdict, diverged) in enumerate(answers):
        check = verdict_rows(Pair(f"a{index}", pair.original, pair.variant, pair.entry_point, literal),
                             answer_verdict, run_id, "strict")
        batch = merge(batch, check)
        answer_rows.append({"answer_id": content_id("answer", row["pair_id"], index), "pair_id": row["pair_id"],
                            "agent_id": "evaluator:test", "answer_index": index,
                            "input_id": check["verdicts"][0]["input_id"], "verdict_id": check["verdicts"][0]
                            ["verdict_id"], "counted": True, "diverged": diverged, "round": 0, "run_id": run_id})
    batch["evaluator_answers"] = answer_rows
    warehouse.store(batch)
    return row["pair_id"]


@pytest.fixture
def planted(tmp_path, local_backend):
    """Four stored pairs: one honest (and flagged), one whose 'diverges' is false (equivalent programs), one whose
    stored outcome is not what the program returns, one honest pair with a false counted answer."""
    warehouse = Warehouse(tmp_path / "planted.duckdb")
    twice = "def f(x):\n    return x + x\n"
    claims = [Pair("honest", twice, "def f(x):\n    return x * 3\n", "f", {"x": 2}),
              Pair("false", twice, "def f(x):\n    return 2 * x\n", "f", {"x": 2}),
              Pair("changed", twice, "def f(x):\n    return x - 1\n", "f", {"x": 5}),
              Pair("bad-answer", twice, "def f(x):\n    return abs(x) * 2\n", "f", {"x": -1})]
    honest, equivalent, changed, bad_answer = verify_many(claims, local_backend)
    assert [v.verdict for v in (honest, equivalent, changed, bad_answer)] == ["diverges", "same", "diverges",
                                                                               "diverges"]
    [same_on_positive] = verify_many([Pair("a", twice, claims[3].variant, "f", {"x": 4})], local_backend)
    assert same_on_positive.verdict == "same"
    forged = equivalent.model_copy(update={"verdict": "diverges", "reason": "different_value"})
    wrong = changed.model_copy(update={"original": changed.original.model_copy(
        update={"digest": "0" * 64, "value": "999"})})
    ids = {"honest": _store_pair(warehouse, "run-planted", claims[0], honest, flags=["trivial_input"]),
           "false": _store_pair(warehouse, "run-planted", claims[1], forged),
           "changed": _store_pair(warehouse, "run-planted", claims[2], wrong),
           "bad-answer": _store_pair(warehouse, "run-planted", claims[3], bad_answer,
                                     answers=[("{'x': 4}", same_on_positive, True), ("{'x': -1}", bad_answer, True)])}
    return warehouse.path, ids


def test_planted_false_pairs_are_not_reproduced_and_leave_verified_pairs(planted):
    db, ids = planted
    assert rows(db, "SELECT count(*) FROM verified_pairs")[0][0] == 4
    done = sinq("audit", "--all", "--db", str(db), "--json")
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["checked"], result["reproduced"], result["not_reproduced"]) == (4, 1, 3)
    assert result["by_reason"] == {"now_same:same_value": 1, "outcome_changed:original": 1,
                                   "answer_not_reproduced": 1}
    assert result["pairs"]["not_reproduced"] == 2
    assert result["answers"] == {"checked": 2, "reproduced": 1, "not_reproduced": 1,
                                 "by_reason": {"now_same:same_value": 1}}
    assert sorted(result["not_reproduced_pairs"]) == sorted([ids["false"], ids["changed"], ids["bad-answer"]])
    assert rows(db, "SELECT pair_id FROM verified_pairs") == [(ids["honest"],)]
    status = dict(rows(db, "SELECT pair_id, status FROM all_pairs"))
    assert status == {ids["honest"]: "verified", ids["false"]: "not_reproduced", ids["changed"]: "not_reproduced",
                      ids["bad-answer"]: "not_reproduced"}
    assert rows(db, "SELECT stored_verdict, verdict, reason FROM audits WHERE subject = 'pair' AND pair_id = ?",
                [ids["false"]]) == [("diverges", "same", "now_same:same_value")]

    again = sinq("audit", "--all", "--db", str(db))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all 1 pairs reproduced" in again.stdout


def _store_equivalent(warehouse: Warehouse, run_id: str, tried: list[tuple[Pair, Verdict]]) -> str:
    batch = equivalent_pair_rows(tried, "construction", ["test"], "equivalence:test", 0, None, None, run_id,
                                 datetime.now(UTC))
    warehouse.store(batch)
    return batch["pairs"][0]["pair_id"]


def test_a_false_equivalence_is_not_reproduced_and_leaves_equivalent_pairs(tmp_path, local_backend):
    """Two stored equivalent pairs: one honest (fuzzed equal on three inputs), one whose second input was forged
    ``same`` where the programs differ. The audit settles every input of each and catches the forged one."""
    warehouse = Warehouse(tmp_path / "equivalent.duckdb")
    twice = "def f(x):\n    return x + x\n"
    # honest for every literal (not ``2 * x``: on None the two raise different TypeErrors, which the audit's
    # cross-type re-check finds)
    honest = [Pair(f"h{n}", twice, "def f(x):\n    y = x + x\n    return y\n", "f", {"x": n}) for n in (2, 5, -1)]
    false = [Pair(f"f{n}", twice, "def f(x):\n    return abs(x) * 2\n", "f", {"x": n}) for n in (4, -1)]
    verdicts = verify_many(honest + false, local_backend)
    assert [v.verdict for v in verdicts] == ["same"] * 4 + ["diverges"]
    forged = verdicts[4].model_copy(update={"verdict": "same", "reason": "same_value"})
    ids = {"honest": _store_equivalent(warehouse, "run-eq", list(zip(honest, verdicts[:3], strict=True))),
           "false": _store_equivalent(warehouse, "run-eq", [(false[0], verdicts[3]), (false[1], forged)])}
    db = warehouse.path
    assert sorted(r[0] for r in rows(db, "SELECT pair_id FROM equivalent_pairs")) == sorted(ids.values())

    nothing = sinq("audit", "--all", "--kind", "inequivalent", "--db", str(db), "--json")
    assert nothing.returncode == 0 and json.loads(nothing.stdout)["checked"] == 0

    done = sinq("audit", "--all", "--kind", "equivalent", "--db", str(db), "--json")
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["checked"], result["reproduced"], result["not_reproduced"]) == (2, 1, 1)
    assert result["by_reason"] == {"now_diverges:different_value": 1}
    assert result["kinds"]["equivalent"]["not_reproduced"] == 1 and result["not_reproduced_pairs"] == [ids["false"]]
    [(verdict, reason, detail)] = rows(db, "SELECT verdict, reason, detail FROM audits WHERE pair_id = ?",
                                       [ids["false"]])
    assert (verdict, reason) == ("diverges", "now_diverges:different_value")
    assert json.loads(detail)["inputs_checked"] == 2 and json.loads(detail)["input"] == "{'x': -1}"
    [(honest_detail,)] = rows(db, "SELECT detail FROM audits WHERE pair_id = ?", [ids["honest"]])
    assert json.loads(honest_detail)["inputs_checked"] == 3
    status = dict(rows(db, "SELECT pair_id, status FROM all_pairs"))
    assert status == {ids["honest"]: "equivalent", ids["false"]: "not_reproduced"}
    assert rows(db, "SELECT pair_id FROM equivalent_pairs") == [(ids["honest"],)]

    again = sinq("audit", "--all", "--db", str(db))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all 1 pairs reproduced" in again.stdout
    bad = sinq("audit", "--kind", "neither", "--db", str(db))
    assert bad.returncode == 2 and "unknown pair kind" in bad.stderr


def test_export_card_has_statistics_and_leaves_flagged_pairs_out(planted, tmp_path):
    import datasets

    db, ids = planted
    assert sinq("audit", "--all", "--db", str(db)).returncode == 1
    plain, everything = tmp_path / "plain", tmp_path / "everything"
    done = sinq("export", str(plain), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "0 pairs" in done.stdout and "1 flagged left out" in done.stdout
    assert pq.read_table(plain / "verified_pairs.parquet").num_rows == 0
    card = (plain / "README.md").read_text()
    assert "1 flagged pairs were left out (`sinq export --include-flagged` keeps them)" in card
    assert "not reproduced by an audit 3" in card
    assert "| trivial_input | 1 |" in card

    done = sinq("export", str(everything), "--db", str(db), "--include-flagged", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    [row] = [json.loads(line) for line in (everything / "verified_pairs.jsonl").read_text().splitlines()]
    assert row["pair_id"] == ids["honest"] and row["flags"] == ["trivial_input"] and row["split"] == "train"
    card = (everything / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["configs"][0]["data_files"] == "verified_pairs.jsonl" and front["license"]
    assert "1 flagged pairs are included" in card
    edits = card[card.index("### Edit size"):]
    assert edits.split("\n\n")[1] == "| changed lines | pairs |\n|---|---|\n| 1 | 1 |"  # one line rewritten
    assert datasets.load_dataset("json", data_files=str(everything / "verified_pairs.jsonl"))["train"].num_rows == 1


def test_nightly_snapshot_card_has_the_statistics(humaneval_run):
    import datasets

    settings, summary = humaneval_run
    snapshot = Path(summary["snapshot"]["path"])
    card = (snapshot / "README.md").read_text()
    kept = rows(settings.warehouse.path, "SELECT count(*) FROM verified_pairs WHERE run_id = ? AND "
                "json_array_length(CAST(flags AS JSON)) = 0", [summary["run_id"]])[0][0]
    assert f"- pairs: {kept}" in card
    for title in ("Pairs per round", "Pairs per source", "Pairs per split", "Difficulty", "Mutation kind",
                  "Edit size", "Degenerate flags"):
        assert f"### {title}" in card
    assert f"| 0 | {kept} |" in card  # every pair is round 0
    operators = rows(settings.warehouse.path, "SELECT DISTINCT s.detail FROM verified_pairs v JOIN pairs p "
                     "USING (pair_id) JOIN samples s ON s.sample_id = p.sample_id WHERE v.run_id = ? AND "
                     "json_array_length(CAST(v.flags AS JSON)) = 0", [summary["run_id"]])
    assert operators and all(f"| {op} | " in card for (op,) in operators)
    table = datasets.load_dataset("parquet", data_files=str(snapshot / "verified_pairs.parquet"))["train"]
    assert table.num_rows == kept and {"split", "flags"} <= set(table.column_names)


# ---- forgeries: a real warehouse edited with SQL, as a red team did (issue 26)
FORGED_PROBLEM = "forgery/a"
"""A problem of the train split (under the default split rule): its pairs may train."""
TWICE = "def f(x):\n    return x + x\n"


def _trained(db: Path) -> set[str]:
    """The pairs some training set would train on: every row the builders read (generator pairs, equivalent pairs,
    evaluator answers), through the builders' own screen."""
    from sinq.sources.config import SplitConfig
    from sinq.training.config import BuildConfig, DecontaminationConfig
    from sinq.training.datasets import screen
    from sinq.warehouse import queries

    warehouse = Warehouse(db)
    read = (queries.training_pairs(warehouse, None) + queries.training_equivalent_pairs(warehouse, None)
            + queries.training_answers(warehouse, None))
    kept, _ = screen(read, BuildConfig(), SplitConfig(), DecontaminationConfig(), None)
    return {row["pair_id"] for row in kept}


def _views(db: Path) -> set[str]:
    return {r[0] for r in rows(db, "SELECT pair_id FROM verified_pairs UNION ALL SELECT pair_id FROM equivalent_pairs")}


@pytest.fixture
def forgeable(tmp_path, local_backend) -> tuple[Path, dict[str, str]]:
    """A real warehouse of one (train-split) problem: two verified inequivalent pairs with a difficulty label and
    counted answers (``ineq`` has one on an input where both sides agree, and one on its diverging input), and two
    equivalent pairs fuzzed equal on three inputs each. Every claim is true: an audit reproduces all of it."""
    from sinq.sources.config import SplitConfig
    from sinq.sources.problem import Problem
    from sinq.training.decontam import split_of
    from sinq.warehouse.records import problem_row

    assert split_of(FORGED_PROBLEM, SplitConfig(), "forgery") == "train"
    warehouse = Warehouse(tmp_path / "forgeable.duckdb")
    now = datetime.now(UTC)
    problem = Problem(source="forgery", source_id="twice", code=TWICE, tests="", entry_point="f",
                      problem_id=FORGED_PROBLEM, seed_inputs=[{"x": 2}])
    warehouse.store({"problems": [problem_row(problem, "run-forgeable", now)]})
    claims = [Pair("ineq", TWICE, "def f(x):\n    return x * 3\n", "f", {"x": 2}),
              Pair("other", TWICE, "def f(x):\n    return x - 1\n", "f", {"x": 5}),
              Pair("agree", TWICE, "def f(x):\n    return x * 3\n", "f", {"x": 0})]
    # equivalent for every literal (``2 * x`` is not: on None it raises another TypeError than ``x + x``)
    equivalents = {"eq": [Pair(f"e{n}", TWICE, "def f(x):\n    y = x + x\n    return y\n", "f", {"x": n})
                          for n in (2, 5, -1)],
                   "eq2": [Pair(f"g{n}", TWICE, "def f(x):\n    out = x\n    return out + x\n", "f", {"x": n})
                           for n in (1, 3, 7)]}
    verdicts = verify_many(claims + equivalents["eq"] + equivalents["eq2"], local_backend)
    assert [v.verdict for v in verdicts] == ["diverges", "diverges", "same"] + ["same"] * 6
    ids: dict[str, str] = {}
    for name, pair, verdict, answers in (("ineq", claims[0], verdicts[0], [("{'x': 0}", verdicts[2], False),
                                                                            ("{'x': 2}", verdicts[0], True)]),
                                         ("other", claims[1], verdicts[1], [])):
        batch = verdict_rows(pair, verdict, "run-forgeable", "strict", now)
        sample_id = content_id("sample", FORGED_PROBLEM, name)
        [row] = pair_rows(batch, "generator:test", 0, FORGED_PROBLEM, sample_id)
        batch["pairs"] = [row]
        batch["samples"] = [{"sample_id": sample_id, "problem_id": FORGED_PROBLEM, "agent_id": "generator:test",
                             "round": 0, "target_difficulty": 5, "program_id": row["variant_program_id"],
                             "input_id": row["input_id"], "status": "valid", "run_id": "run-forgeable",
                             "created_at": now}]
        ids[name] = row["pair_id"]
        batch["difficulty_labels"] = [{"pair_id": row["pair_id"], "evaluator_agent_id": "evaluator:test", "round": 0,
                                       "n_answers": 2, "n_failures": 1, "difficulty": 5, "run_id": "run-forgeable",
                                       "created_at": now}]
        batch["evaluator_answers"] = []
        for index, (literal, answer_verdict, diverged) in enumerate(answers):
            check = verdict_rows(Pair(f"a{index}", pair.original, pair.variant, "f", literal), answer_verdict,
                                 "run-forgeable", "strict", now)
            batch = merge(batch, check)
            batch["evaluator_answers"].append({
                "answer_id": content_id("answer", row["pair_id"], index), "pair_id": row["pair_id"],
                "agent_id": "evaluator:test", "answer_index": index, "input_id": check["verdicts"][0]["input_id"],
                "claimed_equivalent": False, "verdict_id": check["verdicts"][0]["verdict_id"], "counted": True,
                "diverged": diverged, "round": 0, "run_id": "run-forgeable", "created_at": now})
        warehouse.store(batch)
    offset = len(claims)
    for name, tried in equivalents.items():
        batch = equivalent_pair_rows(list(zip(tried, verdicts[offset:offset + 3], strict=True)), "construction",
                                     ["test"], "equivalence:test", 0, FORGED_PROBLEM, None, "run-forgeable", now)
        warehouse.store(batch)
        ids[name] = batch["pairs"][0]["pair_id"]
        offset += 3
    db = warehouse.path
    assert _views(db) == set(ids.values()) and _trained(db) == set(ids.values())
    return db, ids


def _input_of(db: Path, literal: str) -> str:
    [(input_id,)] = rows(db, "SELECT input_id FROM inputs WHERE literal = ?", [literal])
    return input_id


def _evidence_verdict(db: Path, pair_id: str, n: int) -> str:
    [(verdict_id,)] = rows(db, "SELECT json_extract_string(verdict_ids, ?) FROM equivalence_evidence "
                           "WHERE pair_id = ?", [f"$[{n}]", pair_id])
    return verdict_id


def _forge(db: Path, sql: str, params: list) -> None:
    con = duckdb.connect(str(db))
    try:
        con.execute(sql, params)
    finally:
        con.close()


FORGERIES = {
    # the pair's input becomes one where both sides agree: verified_pairs and the training sets serve it as diverging
    "pair_input": ("ineq", "claim_mismatch:input", lambda db, ids: (
        "UPDATE pairs SET input_id = ? WHERE pair_id = ?", [_input_of(db, "{'x': 0}"), ids["ineq"]])),
    # the pair's variant becomes another program: its verdict is about programs it does not show
    "pair_programs": ("ineq", "claim_mismatch:programs", lambda db, ids: (
        "UPDATE pairs SET variant_program_id = (SELECT variant_program_id FROM pairs WHERE pair_id = ?) "
        "WHERE pair_id = ?", [ids["other"], ids["ineq"]])),
    # an equivalent pair's evidence list emptied: nothing was fuzzed, yet it stays in equivalent_pairs
    "evidence_emptied": ("eq", "no_evidence", lambda db, ids: (
        "UPDATE equivalence_evidence SET verdict_ids = '[]', input_ids = '[]', inputs_tried = 0 WHERE pair_id = ?",
        [ids["eq"]])),
    # its evidence row deleted: equivalent_pairs hides it, training sets (all_pairs) still read it as equivalent
    "evidence_deleted": ("eq", "no_evidence", lambda db, ids: (
        "DELETE FROM equivalence_evidence WHERE pair_id = ?", [ids["eq"]])),
    # one of its evidence verdicts says diverges: the input settles as same, which is not what is stored
    "evidence_verdict": ("eq", "verdict_changed:diverges", lambda db, ids: (
        "UPDATE verdicts SET verdict = 'diverges', reason = 'different_value' WHERE verdict_id = ?",
        [_evidence_verdict(db, ids["eq"], 1)])),
    # an equivalent pair's own input (what its training rows read) is one it was never fuzzed on
    "equivalent_input": ("eq", "claim_mismatch:input", lambda db, ids: (
        "UPDATE pairs SET input_id = ? WHERE pair_id = ?", [_input_of(db, "{'x': 0}"), ids["eq"]])),
    # a counted answer's verdict says its input diverges, where both sides agree and the answer says it did not
    "answer_verdict": ("ineq", "answer_not_reproduced", lambda db, ids: (
        "UPDATE verdicts SET verdict = 'diverges', reason = 'different_value' WHERE verdict_id = (SELECT verdict_id "
        "FROM evaluator_answers WHERE pair_id = ? AND answer_index = 0)", [ids["ineq"]])),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_warehouse_is_caught_and_leaves_every_view(forgeable, forgery):
    """Each forgery the red team made with SQL: the audit fails that pair with its own reason (exit 1), takes it out
    of verified_pairs / equivalent_pairs and every training set, and reproduces the untouched pairs."""
    db, ids = forgeable
    victim, reason, make = FORGERIES[forgery]
    _forge(db, *make(db, ids))
    assert ids[victim] in _trained(db)  # the forgery alone does not take it out: only the audit can
    done = sinq("audit", "--all", "--db", str(db), "--json")
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["by_reason"] == {reason: 1}
    assert result["not_reproduced_pairs"] == [ids[victim]]
    assert (result["checked"], result["reproduced"]) == (4, 3)
    [(status, audit_reason)] = rows(db, "SELECT status, audit_reason FROM all_pairs WHERE pair_id = ?", [ids[victim]])
    assert (status, audit_reason) == ("not_reproduced", reason)
    others = set(ids.values()) - {ids[victim]}
    assert _views(db) == others and _trained(db) == others
    if forgery == "answer_verdict":
        assert result["answers"]["by_reason"] == {"verdict_changed:diverges": 1}
    if forgery.startswith("evidence_") or forgery == "pair_programs":
        assert rows(db, "SELECT verdict FROM audits WHERE subject = 'pair' AND pair_id = ?",
                    [ids[victim]]) == [(None if forgery != "evidence_verdict" else "same",)]


def test_an_audit_of_a_truncated_warehouse_is_a_database_error(forgeable, tmp_path):
    """A warehouse cut short (a copy that stopped half-way) is refused as a database problem: one line, exit 4,
    nothing written; never an internal error, never exit 1 (which means "did not reproduce")."""
    db, _ = forgeable
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(db.read_bytes()[:db.stat().st_size // 2])
    size = cut.stat().st_size
    done = sinq("audit", "--all", "--db", str(cut), "--json")
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stdout == "" and "internal error" not in done.stderr
    first, *rest = done.stderr.splitlines()
    assert first.startswith("error: ") and "damaged" in first and "truncated" in first
    assert len(rest) <= 1  # the hint, on its own line
    assert cut.stat().st_size == size and not cut.with_name(cut.name + ".wal").exists()


def test_an_internal_error_of_the_audit_is_not_exit_1(forgeable, monkeypatch):
    """Exit 1 means "did not reproduce" and nothing else: a bug in the audit has its own code."""
    from sinq import audit_cli
    from sinq.game.errors import SinqError
    from sinq.tasks import audit as audits

    db, _ = forgeable

    def broken(*args: object, **kwargs: object) -> dict:
        raise KeyError("a bug")

    monkeypatch.setattr(audits, "audit", broken)
    monkeypatch.setenv("SINQ_CONFIG", "")
    with pytest.raises(SinqError) as caught:
        audit_cli.audit(db=db)
    assert caught.value.exit_code == audit_cli.INTERNAL_ERROR != audit_cli.NOT_REPRODUCED
    assert "internal error in the audit: KeyError" in caught.value.message

