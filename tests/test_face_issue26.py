"""Issue 26, the red team's findings on the face: `sinq sql` writes nothing even with --allow-files, every suite
stores what it reports, bad input is a one-line exit 2 (not exit 4, not an "internal error"), and --json prints one
JSON document and nothing else. Each finding is reproduced as the user ran it: a real `sinq` subprocess."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinq.evals import identifier_swap
from sinq.evals.common import EvalError, EvalRun, Item, Result, distinct, record
from sinq.warehouse.store import Warehouse, WarehouseError
from sinq.warehouse.user_sql import check_read_only, explained

ROOT = Path(__file__).resolve().parents[1]


def sinq(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sinq.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd or ROOT, env={**os.environ, "SINQ_CONFIG": "", **(env or {})})


def one_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    """The error of a refused command: its exit code, one `error:` line (a hint may follow), no traceback."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and len(lines) <= 2, done.stderr
    return lines[0]


def run_row(run_id: str) -> dict:
    return {"run_id": run_id, "kind": "test", "started_at": datetime.now(UTC), "status": "finished", "config": "{}",
            "config_hash": "h", "code_version": "test"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    Warehouse(path).store({"runs": [run_row("r1")]})
    return path


# ---- finding 1: `sinq sql --allow-files` wrote files and tried downloads through EXPLAIN ANALYZE
def test_sql_writes_nothing_and_loads_no_extension_even_with_allow_files(tmp_path: Path, db: Path) -> None:
    victim = tmp_path / "victim.duckdb"
    victim.write_bytes(b"the warehouse a user keeps here\n")
    before = db.read_bytes()
    extensions = Path.home() / ".duckdb" / "extensions"
    installed = sorted(map(str, extensions.rglob("*"))) if extensions.exists() else []
    for query in (f"EXPLAIN ANALYZE COPY (SELECT 42) TO '{victim}'",
                  f"/* a */ EXPLAIN /* b */ ANALYZE COPY (SELECT 42) TO '{victim}'",
                  f"EXPLAIN (ANALYZE, FORMAT JSON) COPY (SELECT 42) TO '{victim}'",
                  "EXPLAIN ANALYZE INSTALL httpfs", "EXPLAIN ANALYZE LOAD httpfs", "EXPLAIN ANALYZE SET threads = 1",
                  f"SELECT 1; EXPLAIN ANALYZE COPY (SELECT 42) TO '{victim}'",
                  f"SELECT 1; COPY (SELECT 42) TO '{victim}'", "INSTALL httpfs", "LOAD httpfs",
                  f"ATTACH '{tmp_path / 'other.duckdb'}'", "SET enable_external_access = true",
                  "CALL pragma_version()", "CREATE TABLE t AS SELECT 1"):
        done = sinq("sql", query, "--db", str(db), "--allow-files", "--format", "csv")
        assert "read-only" in one_line(done), query
        assert done.stdout == ""
    assert victim.read_bytes() == b"the warehouse a user keeps here\n"
    assert not (tmp_path / "other.duckdb").exists()
    assert (sorted(map(str, extensions.rglob("*"))) if extensions.exists() else []) == installed
    assert db.read_bytes() == before
    # reads still run: EXPLAIN [ANALYZE] of a SELECT, WITH ... SELECT, and the file a user lets it read
    (tmp_path / "data.csv").write_text("a\n7\n")
    for query in ("EXPLAIN ANALYZE SELECT count(*) FROM runs", "EXPLAIN WITH x AS (SELECT 1 AS a) SELECT a FROM x",
                  f"SELECT a FROM read_csv('{tmp_path / 'data.csv'}')"):
        done = sinq("sql", query, "--db", str(db), "--allow-files", "--format", "json")
        assert done.returncode == 0, (query, done.stderr)
        assert json.loads(done.stdout)
    settings = ("SELECT current_setting('enable_external_access') AS a, "
                "current_setting('autoinstall_known_extensions') AS b, current_setting('autoload_known_extensions') "
                "AS c, current_setting('lock_configuration') AS d")
    for flag, external in (([], False), (["--allow-files"], True)):
        done = sinq("sql", settings, "--db", str(db), "--format", "json", *flag)
        assert json.loads(done.stdout) == [{"a": external, "b": False, "c": False, "d": True}], done.stderr


def test_every_statement_is_classified_by_duckdb_one_by_one() -> None:
    assert explained("EXPLAIN /* ) */ ANALYZE (FORMAT JSON) SELECT 1") == "SELECT 1"
    assert explained("SELECT 1") is None
    assert check_read_only("SELECT 1; FROM runs; WITH x AS (SELECT 1) SELECT * FROM x; DESCRIBE runs") == [
        "SELECT"] * 4
    assert check_read_only("explain analyse select 1") == ["EXPLAIN"]
    for query, named in (("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x'", "EXPLAIN of COPY"),
                         ("EXPLAIN ANALYZE INSTALL httpfs", "EXPLAIN of INSTALL"),
                         ("SELECT 1;\nEXPLAIN ANALYZE DELETE FROM runs", "EXPLAIN of DELETE (statement 2)"),
                         ("SELECT 1; PRAGMA version", "PRAGMA (statement 2)"), ("EXPLAIN (SELECT 1)", "EXPLAIN of")):
        with pytest.raises(WarehouseError, match=re.escape(named)) as refused:
            check_read_only(query)
        assert refused.value.exit_code == 2


# ---- finding 3: exit codes and clear lines
def test_a_bad_query_or_export_argument_is_exit_2_and_writes_nothing(tmp_path: Path, db: Path) -> None:
    assert "nosuch" in one_line(sinq("sql", "SELECT * FROM nosuch", "--db", str(db)))
    assert "nosuch" in one_line(sinq("sql", "SELECT nosuch FROM runs", "--db", str(db)))
    assert "does not parse" in one_line(sinq("sql", "SELEC 1", "--db", str(db)))
    assert "nope.csv" in one_line(sinq("sql", "SELECT * FROM read_csv('nope.csv')", "--db", str(db),
                                       "--allow-files", cwd=tmp_path))
    # the table view shows data as it is, never as rich markup
    done = sinq("sql", "SELECT '[[eval.gate.suites]]' AS a, '[/]' AS b, '[red]x[/red]' AS c", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "[[eval.gate.suites]]" in done.stdout and "[/]" in done.stdout and "[red]x[/red]" in done.stdout
    out = tmp_path / "out"
    assert "xml" in one_line(sinq("export", str(out), "--format", "xml", "--db", str(db)))
    assert "nosuchrun" in one_line(sinq("export", str(out), "--run", "nosuchrun", "--db", str(db)))
    assert not out.exists()
    done = sinq("export", str(out), "--run", "r1", "--db", str(db))  # a known run with no pairs: an empty export
    assert done.returncode == 0 and (out / "README.md").exists(), done.stderr


def test_eval_arguments_are_named_and_checked_before_the_work(tmp_path: Path, db: Path) -> None:
    assert "unknown mode 'badmode'" in one_line(sinq("eval", "game", "--mode", "badmode", "--db", str(db)))
    assert "unknown agent 'nobody'" in one_line(sinq("eval", "game", "--agent", "nobody", "--db", str(db)))
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return True\n"}) + "\n")
    missing = tmp_path / "no-such-folder" / "w.duckdb"
    line = one_line(sinq("eval", "humaneval", "--samples", str(samples), "--db", str(missing)), code=4)
    assert "no-such-folder" in line and "does not exist" in line
    swap = tmp_path / "swap.csv"
    with swap.open("w", newline="") as handle:
        csv.writer(handle).writerows([["prompt", "classes", "answer_index"], ["", repr(["print(1)", "x"]), 0]])
    line = one_line(sinq("eval", "identifier-swap", "--file", str(swap), "--model", str(tmp_path), "--db", str(db)))
    assert "swap.csv:2" in line and "prompt is empty" in line
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"prompt,classes,answer_index\n\xd0\xff\x00\x01")
    for bad, says in ((binary, "not UTF-8"), (tmp_path, "not a file")):
        line = one_line(sinq("eval", "identifier-swap", "--file", str(bad), "--model", str(tmp_path), "--db", str(db)))
        assert says in line
    with pytest.raises(EvalError, match="completion in classes is empty"):
        swap.write_text('prompt,classes,answer_index\n"x = 1","[\'a\', \'  \']",0\n')
        identifier_swap.load(swap)


def test_bad_samples_files_are_one_line_errors(tmp_path: Path, db: Path, local_backend) -> None:
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(Path(sys.executable).read_bytes()[:4096])
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    nested = tmp_path / "nested.jsonl"
    nested.write_text(json.dumps({"task_id": ["HumanEval/0"], "completion": "x"}) + "\n")
    listed = tmp_path / "listed.jsonl"
    listed.write_text(json.dumps([{"task_id": "HumanEval/0", "completion": "x"}]) + "\n")
    for path, says in ((binary, "not UTF-8"), (folder, "not a file"), (nested, "task_id is not a string"),
                       (listed, "not an object")):
        assert says in one_line(sinq("eval", "humaneval", "--samples", str(path), "--db", str(db)))


def test_equal_hash_seeds_are_a_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "sinq.toml"
    config.write_text("[sandbox]\nhash_seeds = [1, 1]\n")
    assert "hash seeds must differ" in one_line(sinq("sandbox", "info", "--config", str(config)))
    from pydantic import ValidationError

    from sinq.sandbox.config import SandboxConfig

    for seeds in ((3, 3), (1, -1)):
        with pytest.raises(ValidationError, match="hash seed"):
            SandboxConfig(hash_seeds=seeds)
    assert SandboxConfig(hash_seeds=(0, 4294967295)).hash_seeds == (0, 4294967295)


# ---- finding 2: stored equals reported
def _swap_file(tmp_path: Path) -> Path:
    """Two distinct items, each on two rows (the second copy of item 2 with another wrong completion)."""
    path = tmp_path / "swap.csv"
    rows = [["prompt", "classes", "answer_index"],
            ["print, len = len, print\n", repr(["print(len('ab'))", "len(print('ab'))"]), 1],
            ["print, len = len, print\n", repr(["print(len('ab'))", "len(print('ab'))"]), 1],
            ["range, sum = sum, range\n", repr(["range([1, 2])", "sum([1, 2])"]), 0],
            ["range, sum = sum, range\n", repr(["range([1, 2])", "sum(range(2))"]), 0]]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _stored(db: Path, eval_id: str) -> int:
    return Warehouse(db).query("SELECT count(*) FROM eval_results WHERE eval_id = ?", [eval_id])[1][0][0]


def test_identifier_swap_counts_and_stores_each_distinct_item_once(tmp_path: Path, tiny_model: Path) -> None:
    swap, db = _swap_file(tmp_path), tmp_path / "w.duckdb"
    loaded = identifier_swap.read(swap)
    assert len(loaded.items) == 2 and loaded.duplicates == 2 and loaded.conflicting == 1
    for mode, queries in (("loglikelihood", 2), ("generate", 4)):
        done = sinq("eval", "identifier-swap", "--file", str(swap), "--mode", mode, "--model", str(tiny_model),
                    "--device", "cpu", "--db", str(db), "--json", env={"HF_HUB_OFFLINE": "1"})
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)  # the whole stdout is the one JSON document
        assert summary["n"] == queries == summary["metrics"]["accuracy"]["n"], summary
        assert summary["items"] == 2 and summary["detail"]["duplicates"] == 2
        assert _stored(db, summary["eval_id"]) == summary["n"]


def test_every_suite_stores_what_it_counts(tmp_path: Path) -> None:
    assert distinct(["a", "b", "a", "c", "b"], str) == (["a", "b", "c"], 2)
    item = Item("identifier-swap", "x = 1\n", "t")
    colliding = EvalRun("identifier-swap", "1", None, None, "loglikelihood", [item, item],
                        [Result(item.item_id, 0, True), Result(item.item_id, 0, False)], {})
    with pytest.raises(RuntimeError, match="repeat an"):
        record(Warehouse(tmp_path / "w.duckdb"), colliding)
    # a fresh database is created, not refused, when the run has nothing to register first
    fresh = tmp_path / "fresh.duckdb"
    eval_id = record(Warehouse(fresh), EvalRun("humaneval", "1", None, None, "samples", [
        Item("humaneval", "def f():\n    pass\n", "stub", register=False)], [
        Result(Item("humaneval", "def f():\n    pass\n", "stub").item_id, 0, True)], {}))
    assert _stored(fresh, eval_id) == 1


# ---- finding 4: --json prints one JSON document and nothing else on stdout
def test_json_output_is_one_document(tmp_path: Path, db: Path) -> None:
    home = {"SINQ_HOME": str(tmp_path / "home")}
    for args in (["db", "info"], ["eval", "list"], ["eval", "sets"], ["models", "list"], ["server", "status"],
                 ["audit"]):
        done = sinq(*args, "--db", str(db), "--json", env=home) if args[0] != "server" else sinq(*args, "--json",
                                                                                                   env=home)
        assert done.returncode == 0, (args, done.stderr)
        json.loads(done.stdout)  # the whole stdout: one document, nothing printed beside it
    for args in (["eval", "freeze"], ["train", "build", "sft"], ["export", str(tmp_path / "x"), "--run", "no"]):
        done = sinq(*args, "--db", str(db), *(["--json"] if args[0] != "export" else []), env=home)
        assert done.returncode == 2 and done.stdout == "", (args, done.stdout)


def test_json_output_of_sandboxed_commands_is_one_document(tmp_path: Path, db: Path, local_backend) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return True\n"}) + "\n")
    fresh = tmp_path / "fresh.duckdb"  # a new file is created by the eval, not refused
    done = sinq("eval", "humaneval", "--samples", str(samples), "--db", str(fresh), "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["n"] == 1 == _stored(fresh, first["eval_id"])
    again = json.loads(sinq("eval", "humaneval", "--samples", str(samples), "--db", str(fresh), "--json").stdout)
    done = sinq("eval", "compare", first["eval_id"], again["eval_id"], "--db", str(fresh), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["queries"] == 1, done.stderr
    done = sinq("sources", "validate", "--source", "humaneval", "--limit", "2", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["loaded"] == 2, done.stderr


def test_figure_tables_show_settings_names_as_written(capsys) -> None:
    """`train finetune` and the other figure tables print a gate's reasons verbatim: ``[[eval.gate.suites]]`` is a
    setting's name, not rich markup to swallow."""
    from sinq.cli import _figures

    _figures({"reasons": "no [[eval.gate.suites]] configured; [red]x[/red]"}, "figures [1]", json_out=False)
    shown = capsys.readouterr().out
    assert "[[eval.gate.suites]]" in shown and "[red]x[/red]" in shown and "figures [1]" in shown
