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
    honest = [Pair(f"h{n}", twice, "def f(x):\n    return 2 * x\n", "f", {"x": n}) for n in (2, 5, -1)]
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
