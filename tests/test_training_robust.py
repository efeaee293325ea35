"""Issue 26's training findings, each reproduced: a fine-tune killed with SIGKILL is reaped like a run and leaves no
adapter folder; bad input (base model, max_length, chat template) is one line with exit 2; `sinq train finetune`
checks its warehouse before any flow run exists; `sinq train sft --json` prints one JSON document on stdout.

Material: the tiny random model made on the spot and a six-example generator SFT set written straight into a fresh
warehouse (no nightly run needed). CLI runs go through tests/test_errors.py's `sinq` (PREFECT_API_URL on a port
nobody listens on, so a check that came after Prefect would answer exit 5 instead of its own line)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sinq.training.config import BuildConfig, TrainConfig
from tests.test_errors import one_line, sinq
from tests.test_training import _row

STEPS = TrainConfig(max_steps=1, batch_size=2, max_length=4096, lora_r=4, lora_alpha=8, logging_steps=1)


@pytest.fixture(scope="module")
def material(tiny_model, tmp_path_factory) -> dict:
    """A warehouse holding one generator SFT set, a config whose adapters go under the module's folder."""
    from sinq.training.datasets import generator_sft, write_snapshot
    from sinq.warehouse.store import Warehouse

    root = tmp_path_factory.mktemp("robust")
    db = root / "w.duckdb"
    build = BuildConfig(root=root / "sets", easy_share=1.0)
    built = write_snapshot(Warehouse(db), "sft", "generator",
                           generator_sft([_row(f"h{i}", f"p{i}", 7) for i in range(6)], build), build)
    (root / "home").mkdir()
    return {"root": root, "db": db, "home": root / "home", "snapshot": built["snapshot_id"], "model": tiny_model}


def _config(material: dict, name: str, **train: object) -> tuple[str, Path]:
    """A config file with [training.train] set (output_root its own folder); returns it and that folder."""
    adapters = material["root"] / f"adapters-{name}"
    values = {"output_root": str(adapters), "max_steps": 1, "batch_size": 2, "lora_r": 4, "logging_steps": 1,
              **train}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    path = material["root"] / f"{name}.toml"
    path.write_text(f"[training.train]\n{lines}\n")
    return str(path), adapters


def _jobs(db: Path) -> list[dict]:
    from sinq.warehouse.store import Warehouse

    with Warehouse(db).reading() as con:  # retries while a training process holds its write
        cursor = con.execute("SELECT job_id, status, pid, output_path, metrics FROM training_jobs ORDER BY job_id")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_a_fine_tune_killed_with_sigkill_is_marked_crashed_and_leaves_no_adapter_folder(material) -> None:
    """Killed right after it recorded its job row and made its partial folder: the row stays `running` until the
    next command that looks (`sinq models list`) marks it `crashed` and removes the folder; nothing registered."""
    config, adapters = _config(material, "killed", max_steps=500)
    env = {k: v for k, v in os.environ.items() if k != "SINQ_DEBUG"}
    env.update({"SINQ_CONFIG": "", "SINQ_HOME": str(material["home"]), "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    process = subprocess.Popen([sys.executable, "-m", "sinq.cli", "train", "sft", "--base", str(material["model"]),
                                "--dataset", material["snapshot"], "--db", str(material["db"]), "--config", config],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            running = [j for j in _jobs(material["db"]) if j["status"] == "running" and j["pid"] == process.pid]
            if running and adapters.is_dir() and any(adapters.iterdir()):
                break
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the job never recorded its row"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stderr.close()
    [job] = running
    output = Path(job["output_path"])
    assert [p.name for p in adapters.iterdir()] == [f".{output.name}.partial"]  # never a folder at the final path
    assert [j["status"] for j in _jobs(material["db"]) if j["job_id"] == job["job_id"]] == ["running"]

    listed = sinq("models", "list", "--db", str(material["db"]), "--json", home=material["home"])
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert json.loads(listed.stdout) == [], "a killed job's adapter was registered"
    assert f"marked 1 dead training job(s) crashed: {job['job_id']}" in listed.stderr
    [after] = [j for j in _jobs(material["db"]) if j["job_id"] == job["job_id"]]
    assert after["status"] == "crashed" and "process is gone" in json.loads(after["metrics"])["error"]
    assert list(adapters.iterdir()) == [], "the unfinished adapter folder was left behind"
    again = sinq("db", "info", "--db", str(material["db"]), "--json", home=material["home"])
    assert json.loads(again.stdout)["marked_crashed_jobs"] == []


def test_the_next_training_command_reaps_dead_jobs_and_their_folders(material, tmp_path: Path) -> None:
    """Rows as a killed job leaves them: dead on this host (its folder partial, or renamed but not registered),
    silent elsewhere past the bound; a live one is left alone. train() reaps before anything else (here it then
    fails on an unknown set), and `sinq db info` reports what it marked."""
    from sinq.training import jobs
    from sinq.training.train import train
    from sinq.warehouse.store import Warehouse

    db = tmp_path / "w.duckdb"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = datetime.now(UTC)
    outputs = {name: tmp_path / "adapters" / name for name in ("dead-partial", "dead-renamed", "silent", "alive")}
    for name, output in outputs.items():
        (output if name == "dead-renamed" else jobs.partial_path(output)).mkdir(parents=True)
    identity = jobs.identity()
    rows = [{"job_id": "dead-partial", **identity, "pid": int(gone.stdout)},
            {"job_id": "dead-renamed", **identity, "pid": int(gone.stdout)},
            {"job_id": "silent", "host": "elsewhere", "pid": 1,
             "heartbeat_at": now - timedelta(seconds=jobs.STALE_AFTER_S + 60)},
            {"job_id": "alive", **identity}]
    Warehouse(db).store({"training_jobs": [
        {**row, "kind": "sft", "role": "generator", "status": "running", "started_at": now,
         "output_path": str(outputs[row["job_id"]])} for row in rows]})
    with pytest.raises(KeyError):
        train(Warehouse(db), "sft", "generator", str(material["model"]), "no-such-set", STEPS)
    assert {j["job_id"]: j["status"] for j in _jobs(db)} == {
        "dead-partial": "crashed", "dead-renamed": "crashed", "silent": "crashed", "alive": "running"}
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == [".alive.partial"]

    with Warehouse(db).writing() as con:  # the live one dies too: `sinq db info` finds it
        con.execute("UPDATE training_jobs SET pid = ? WHERE job_id = 'alive'", [int(gone.stdout)])
    info = sinq("db", "info", "--db", str(db), "--json", home=material["home"])
    assert json.loads(info.stdout)["marked_crashed_jobs"] == ["alive"]
    assert list((tmp_path / "adapters").iterdir()) == []


@pytest.mark.parametrize("case", ["missing", "file", "no-config", "adapter", "no-weights", "no-template",
                                  "damaged-weights"])
def test_a_base_that_is_not_a_usable_model_is_one_clear_line(material, tmp_path: Path, case: str) -> None:
    """Each refused with TrainingInputError (exit 2) saying what is wrong; none reaches TRL's or a loader's message.
    All but damaged weights are refused before a job row exists."""
    from sinq.training.train import TrainingInputError, train
    from sinq.warehouse.store import Warehouse

    base = tmp_path / "base"
    if case != "missing":
        if case == "file":
            base.write_text("not a model")
        else:
            shutil.copytree(material["model"], base)
    expected = {"missing": "no such folder", "file": "is a file", "no-config": "no config.json",
                "adapter": "a PEFT adapter", "no-weights": "has no weights", "no-template": "has no chat template",
                "damaged-weights": "cannot load base model"}[case]
    if case in ("no-config", "adapter"):
        (base / "config.json").unlink()
        if case == "adapter":
            (base / "adapter_config.json").write_text("{}")
    if case == "no-weights":
        (base / "model.safetensors").unlink()
    if case == "damaged-weights":
        (base / "model.safetensors").write_text("garbage")
    if case == "no-template":
        (base / "chat_template.jinja").unlink(missing_ok=True)
        tokenizer_config = json.loads((base / "tokenizer_config.json").read_text())
        tokenizer_config.pop("chat_template", None)
        (base / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    db = tmp_path / "w.duckdb"
    shutil.copy(material["db"], db)
    jobs_before = len(_jobs(db))
    output_root = tmp_path / "adapters"
    with pytest.raises(TrainingInputError) as raised:
        train(Warehouse(db), "sft", "generator", str(base), material["snapshot"],
              STEPS.model_copy(update={"output_root": output_root}))
    assert expected in raised.value.message and raised.value.exit_code == 2
    assert len(_jobs(db)) == jobs_before + (case == "damaged-weights")
    assert not output_root.exists() or list(output_root.iterdir()) == []
    if case == "no-config":  # the command line: one line, exit 2
        config, _ = _config(material, "bad-base")
        done = sinq("train", "sft", "--base", str(base), "--dataset", material["snapshot"], "--db", str(db),
                    "--config", config, home=material["home"])
        one_line(done, 2, "is not a model folder: no config.json")


def test_a_max_length_that_drops_every_example_says_so(material, tmp_path: Path) -> None:
    """Every assistant turn lies past 32 tokens: TRL would drop all six and fail on `num_samples=0`; instead one
    line with the count, the job `failed`, no folder, nothing registered."""
    from sinq.training.train import TrainingInputError, train
    from sinq.warehouse.adapters import list_adapters
    from sinq.warehouse.store import Warehouse

    db = tmp_path / "w.duckdb"
    shutil.copy(material["db"], db)
    before = {j["job_id"] for j in _jobs(db)}
    registered = list_adapters(Warehouse(db))
    output_root = tmp_path / "adapters"
    with pytest.raises(TrainingInputError) as raised:
        train(Warehouse(db), "sft", "generator", str(material["model"]), material["snapshot"],
              STEPS.model_copy(update={"output_root": output_root, "max_length": 32}))
    assert "max_length 32 drops every example (6 of 6)" in raised.value.message and raised.value.exit_code == 2
    assert [j["status"] for j in _jobs(db) if j["job_id"] not in before] == ["failed"]
    assert list(output_root.iterdir()) == [] and list_adapters(Warehouse(db)) == registered


def test_finetune_checks_its_warehouse_before_any_flow_run(material, tmp_path: Path) -> None:
    """A missing file, a missing folder, a folder as the file: exit 4 with the database's line, and never a Prefect
    contact (the API URL answers nothing: reaching it would be exit 5); nothing created. A bad base is exit 2."""
    home = material["home"]
    base = str(material["model"])
    missing = tmp_path / "missing.duckdb"
    one_line(sinq("train", "finetune", "--db", str(missing), "--base", base, home=home), 4,
             f"no warehouse at {missing}: nothing is stored to train on")
    assert not missing.exists()
    one_line(sinq("train", "finetune", "--db", str(tmp_path / "nowhere" / "w.duckdb"), "--base", base, home=home), 4,
             "folder", "does not exist")
    one_line(sinq("train", "finetune", "--db", str(tmp_path), "--base", base, home=home), 4, "is a folder")
    one_line(sinq("train", "finetune", "--db", str(material["db"]), "--base", str(tmp_path / "nope"), home=home), 2,
             "no such folder")
    one_line(sinq("train", "finetune", "--db", str(material["db"]), home=home), 2, "no base model for the evaluator")


def test_train_json_prints_one_json_document_on_stdout(material) -> None:
    """TRL's log dicts (`{'loss': ...}`, `{'train_runtime': ...}`) go to stderr: stdout parses as one document."""
    config, _ = _config(material, "json")
    done = sinq("train", "sft", "--base", str(material["model"]), "--dataset", material["snapshot"], "--db",
                str(material["db"]), "--config", config, "--json", home=material["home"], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["train_loss"] > 0 and Path(result["path"]).is_dir()
    assert "'train_runtime'" in done.stderr  # TRL still says it, where a person reads
