"""Data hygiene when pairs are stored (issue 11, parts 3 and 5): duplicates (exact by normalised AST, near by MinHash
confirmed by overlapping edits) per problem, across rounds and runs; degenerate flags on planted variants. Real
DuckDB files, the real sandbox, the real `sinq verify --db` and the real nightly stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sinq.flows.config import RunConfig
from sinq.game.config import FlagsConfig, QualityConfig
from sinq.game.degenerate import ENVIRONMENT_DEPENDENT, HASH_PUZZLE, OVERSIZED_INPUT, flags
from sinq.game.similarity import code_tokens, minhash
from sinq.sandbox.shared import close_shared_pools
from sinq.sandbox.verify import Pair, verify_many
from sinq.settings import Settings
from sinq.tasks.hygiene import preparer
from sinq.warehouse.config import WarehouseConfig
from sinq.warehouse.records import merge, pair_rows, verdict_rows
from sinq.warehouse.store import Warehouse
from tests.conftest import fast_config

ORIGINAL = '''def score(values, bonus):
    """Sum of the positive values, plus a bonus for each value above ten."""
    total = 0
    for value in values:
        if value > 0:
            total += value
        if value > 10:
            total += bonus
    return total
'''
SITE_A = ORIGINAL.replace("total += value", "total -= value")
SITE_B = ORIGINAL.replace("total += bonus", "total -= bonus")
RENAMED_A = '''def score(values, bonus):
    """A different docstring: it does not count."""
    acc = 0   # nor do comments, layout or the names of locals
    for v in values:
        if v > 0: acc -= v
        if v > 10:
            acc += bonus
    return acc
'''
SAME_PLACE_AS_A = SITE_A.replace("total -= value", "total *= value")  # one token away from SITE_A
A_AND_ELSEWHERE = SITE_A.replace("value > 10", "value > 11")  # SITE_A plus one token at another place
INPUT_A, INPUT_B = "{'values': [3], 'bonus': 1}", "{'values': [11], 'bonus': 1}"
SEEDS = ["{'values': [1, 2, 30], 'bonus': 2}"]


def _problem(problem_id: str, code: str = ORIGINAL, seeds: list[str] = SEEDS) -> dict:
    return {"problem_id": problem_id, "source": "test", "source_id": problem_id, "code": code,
            "entry_point": "score", "seed_inputs": json.dumps(seeds), "validation_status": "valid"}


def _store(warehouse: Warehouse, backend, problem_id: str | None, run_id: str, items: list[tuple[str, str]],
           original: str = ORIGINAL, entry_point: str = "score") -> list[dict]:
    """Verify (variant, input) claims in the sandbox and store the pairs as the nightly stage does."""
    pairs = [Pair(f"{run_id}:{i}", original, variant, entry_point, literal)
             for i, (variant, literal) in enumerate(items)]
    verdicts = verify_many(pairs, backend)
    assert [v.verdict for v in verdicts] == ["diverges"] * len(items), [(v.reason, v.detail) for v in verdicts]
    batch = merge(*[verdict_rows(p, v, run_id, "strict") for p, v in zip(pairs, verdicts, strict=True)])
    batch["pairs"] = pair_rows(batch, "test", 0, problem_id)
    warehouse.store(batch, prepare=preparer(QualityConfig()))
    return batch["pairs"]


def _marks(warehouse: Warehouse) -> dict[str, tuple]:
    _, rows = warehouse.query("SELECT pair_id, duplicate_of, duplicate_kind, similarity, flags, variant_ast_hash "
                              "FROM pairs")
    return {r[0]: r[1:] for r in rows}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    store = Warehouse(tmp_path / "w.duckdb")
    store.store({"problems": [_problem("p1"), _problem("p2")]})
    return store


def test_distinct_sites_look_alike_to_minhash_alone():
    """The reason for the edit test: two mutations at different places are above the MinHash threshold."""
    dedup = QualityConfig().dedup
    threshold = dedup.near_threshold
    signature = {name: minhash(code_tokens(code), dedup.shingle, dedup.num_perm, dedup.seed) for name, code in
                 {"a": SITE_A, "b": SITE_B, "same": SAME_PLACE_AS_A}.items()}
    assert signature["a"].jaccard(signature["b"]) >= threshold
    assert signature["a"].jaccard(signature["same"]) >= threshold


def test_exact_near_and_distinct_across_runs(warehouse: Warehouse, local_backend):
    first = _store(warehouse, local_backend, "p1", "run-1", [(SITE_A, INPUT_A)])
    later = _store(warehouse, local_backend, "p1", "run-2", [
        (RENAMED_A, INPUT_A), (SAME_PLACE_AS_A, INPUT_A), (SITE_B, INPUT_B), (A_AND_ELSEWHERE, INPUT_A)])
    other_problem = _store(warehouse, local_backend, "p2", "run-2", [(SITE_A, INPUT_A)])
    marks = _marks(warehouse)
    a, renamed, same_place, b, elsewhere = (p["pair_id"] for p in first + later)
    assert marks[a][:2] == (None, None)
    assert marks[renamed][:3] == (a, "exact", 1.0) and marks[renamed][4] == marks[a][4]
    assert marks[same_place][:2] == (a, "near") and marks[same_place][2] >= QualityConfig().dedup.near_threshold
    assert marks[elsewhere][:2] == (a, "near")
    assert marks[b][:2] == (None, None), "a mutation at another site is a distinct pair"
    assert marks[other_problem[0]["pair_id"]][:2] == (None, None), "the same variant of another problem is kept"
    assert all(m[4] and json.loads(m[3]) == [] for m in marks.values())
    _, verified = warehouse.query("SELECT pair_id FROM verified_pairs ORDER BY pair_id")
    assert {r[0] for r in verified} == {a, b, other_problem[0]["pair_id"]}
    _, duplicates = warehouse.query("SELECT pair_id, duplicate_of, duplicate_kind FROM duplicate_pairs")
    assert {r[0]: r[2] for r in duplicates} == {renamed: "exact", same_place: "near", elsewhere: "near"}


def test_duplicates_within_one_batch_and_a_restore_is_not_its_own_duplicate(warehouse: Warehouse, local_backend):
    twice = [(SITE_A, INPUT_A), (SITE_A, "{'values': [5], 'bonus': 0}")]  # one variant, two diverging inputs
    stored = _store(warehouse, local_backend, "p1", "run-1", twice)
    marks = _marks(warehouse)
    first, second = (p["pair_id"] for p in stored)
    assert marks[first][0] is None and marks[second][:2] == (first, "exact")
    again = _store(warehouse, local_backend, "p1", "run-1", twice)
    assert [p["pair_id"] for p in again] == [p["pair_id"] for p in stored]
    assert _marks(warehouse) == marks
    assert again[0]["duplicate_of"] is None and again[1]["duplicate_of"] == stored[0]["pair_id"]


def _store_prepared(path: str, batch: dict) -> None:
    Warehouse(path).store(batch, prepare=preparer(QualityConfig()))


def test_concurrent_writers_never_both_miss_each_other(warehouse: Warehouse, local_backend):
    """Four processes store the same variant at once (four samples of four runs): the lookup runs inside each write
    transaction, so exactly one pair is canonical whatever the interleaving."""
    import multiprocessing

    batches = []
    for run in range(4):
        pair = Pair(f"r{run}", ORIGINAL, SITE_A, "score", INPUT_A)
        batch = verdict_rows(pair, verify_many([pair], local_backend)[0], f"run-{run}", "strict")
        batch["pairs"] = pair_rows(batch, "test", 0, "p1", sample_id=f"sample-{run}")
        batches.append(batch)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(_store_prepared, [(str(warehouse.path), b) for b in batches])
    marks = _marks(warehouse)
    canonical = [pid for pid, m in marks.items() if m[0] is None]
    assert len(marks) == 4 and len(canonical) == 1
    assert all(m[:2] == (canonical[0], "exact") for pid, m in marks.items() if pid != canonical[0])


def test_near_duplicates_can_be_switched_off(warehouse: Warehouse, local_backend):
    quality = QualityConfig.model_validate({"dedup": {"near": False}})
    pairs = [Pair(f"x:{i}", ORIGINAL, v, "score", INPUT_A) for i, v in enumerate([SITE_A, SAME_PLACE_AS_A])]
    verdicts = verify_many(pairs, local_backend)
    batch = merge(*[verdict_rows(p, v, "run-x", "strict") for p, v in zip(pairs, verdicts, strict=True)])
    batch["pairs"] = pair_rows(batch, "test", 0, "p1")
    warehouse.store(batch, prepare=preparer(quality))
    assert [m[0] for m in _marks(warehouse).values()] == [None, None]


# ---- degenerate flags
CLEAN = "def f(x):\n    return x + 1\n"
PLANTED = {
    ENVIRONMENT_DEPENDENT: [
        "import time\ndef f(x):\n    return x + 1 if time.time() > 0 else x\n",
        "from datetime import datetime\ndef f(x):\n    return x + datetime.now().year\n",
        "import os as o\ndef f(x):\n    return x + o.getpid() % 1 + 1\n",
        "from os import environ\ndef f(x):\n    return x + len(environ.get('HOME', ''))\n",
        "import os\ndef f(x):\n    return x + os.path.exists('/etc/passwd')\n",
        "import socket\ndef f(x):\n    return x + len(socket.gethostname())\n",
        "def f(x):\n    with open('data.txt') as handle:\n        return x + len(handle.read())\n",
        "def f(x):\n    return x + len('/tmp/work/x')\n",
        "import sys\ndef f(x):\n    return x + len(sys.argv)\n",
        "import random\ndef f(x):\n    return x + random.randint(1, 1)\n",
        "def f(x):\n    return x + __import__('os').getpid()\n",
    ],
    HASH_PUZZLE: [
        "def f(x):\n    return -x if hash(str(x)) % 97 == 3 else x + 1\n",
        "import zlib\ndef f(x):\n    return -x if zlib.crc32(str(x).encode()) % 97 == 3 else x + 1\n",
        "import hashlib\ndef f(x):\n    return -x if hashlib.md5(str(x).encode()).hexdigest()[0] == 'a' else x + 1\n",
        "from binascii import crc32\ndef f(x):\n    return -x if crc32(b'1') == x else x + 1\n",
        "def f(x):\n    return x + 1 + (id(x) == 0)\n",
    ],
}
NOT_FLAGGED = [
    "import os\ndef f(x):\n    return x + len(os.path.join('a', 'b'))\n",  # os.path's pure string functions
    "def f(x):\n    open = lambda: 1\n    return x + open()\n",  # a local named like a builtin
    "def f(x):\n    id = x\n    return id + 2\n",
    "def f(x):\n    return x + 2\n",
]


@pytest.mark.parametrize(("flag", "variant"), [(f, v) for f, vs in PLANTED.items() for v in vs])
def test_each_planted_variant_is_flagged_and_the_original_is_not(flag: str, variant: str):
    assert flags(CLEAN, variant, "{'x': 1}", ["{'x': 2}"]) == [flag]
    assert flags(CLEAN, CLEAN, "{'x': 1}", ["{'x': 2}"]) == []
    assert flags(variant, variant, "{'x': 1}", ["{'x': 2}"]) == [], "what the original does too is not the variant's"


@pytest.mark.parametrize("variant", NOT_FLAGGED)
def test_look_alikes_are_not_flagged(variant: str):
    assert flags(CLEAN, variant, "{'x': 1}", ["{'x': 2}"]) == []


def test_oversized_input_against_the_seed_inputs():
    config = FlagsConfig(max_input_factor=10, min_input_chars=256)
    seeds = ["{'xs': [1, 2, 3]}", "{'xs': [4]}"]
    huge = repr({"xs": list(range(400))})
    assert flags(CLEAN, CLEAN, huge, seeds, config) == [OVERSIZED_INPUT]
    assert flags(CLEAN, CLEAN, "{'xs': [1, 2, 3, 4, 5, 6, 7, 8]}", seeds, config) == []
    assert flags(CLEAN, CLEAN, repr({"xs": list(range(20))}), seeds, config) == [], "short inputs never are"
    assert flags(CLEAN, CLEAN, huge, [], config) == [], "nothing to compare with"


def test_flags_are_stored_on_the_pair_and_it_stays_visible(tmp_path: Path, local_backend):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    original = "def f(xs):\n    return sum(xs)\n"
    warehouse.store({"problems": [_problem("p", original, ["{'xs': [1, 2, 3]}"])]})
    environment = "import os\ndef f(xs):\n    return sum(xs) + len(os.environ.get('HOME', 'x'))\n"
    oversized = "def f(xs):\n    return sum(xs) if len(xs) < 500 else 0\n"
    stored = _store(warehouse, local_backend, "p", "run-1", [
        (environment, "{'xs': [1]}"), (oversized, repr({"xs": [1] * 600}))], original=original, entry_point="f")
    marks = _marks(warehouse)
    assert json.loads(marks[stored[0]["pair_id"]][3]) == [ENVIRONMENT_DEPENDENT]
    assert json.loads(marks[stored[1]["pair_id"]][3]) == [OVERSIZED_INPUT]
    _, rows = warehouse.query("SELECT flags FROM verified_pairs ORDER BY flags")
    assert sorted(json.loads(r[0])[0] for r in rows) == [ENVIRONMENT_DEPENDENT, OVERSIZED_INPUT]


# ---- the two ways pairs are stored
def test_verify_with_db_twice_stores_one_pair(tmp_path: Path, local_backend):
    """Ids are content (issue 12): the same claim verified twice is the same pair_id, stored once; the run that
    stored it first stays its provenance."""
    source = tmp_path / "pairs.jsonl"
    source.write_text(json.dumps({"id": "a", "original": ORIGINAL, "variant": SITE_A, "entry_point": "score",
                                  "input": INPUT_A}) + "\n")
    db = tmp_path / "w.duckdb"
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "sinq.cli", "verify", str(source), "--json", "--db", str(db)],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "SINQ_CONFIG": ""})
        assert done.returncode == 0, done.stderr
    warehouse = Warehouse(db)
    _, pairs = warehouse.query("SELECT pair_id, run_id, variant_ast_hash FROM pairs ORDER BY created_at")
    _, runs = warehouse.query("SELECT run_id FROM runs ORDER BY started_at")
    assert len(pairs) == 1 and pairs[0][2] is not None and len(runs) == 2 and pairs[0][1] == runs[0][0]
    _, verified = warehouse.query("SELECT pair_id FROM verified_pairs")
    _, duplicates = warehouse.query("SELECT pair_id FROM duplicate_pairs")
    assert verified == [(pairs[0][0],)] and duplicates == []
    _, counts = warehouse.query("SELECT (SELECT count(*) FROM verdicts), (SELECT count(*) FROM executions)")
    assert counts[0][0] == 1 and counts[0][1] > 0


def test_a_second_round_of_the_baseline_stores_duplicates_and_evaluates_none(local_backend, tmp_path: Path):
    from sinq.tasks import stages

    settings = Settings(sandbox=fast_config(), warehouse=WarehouseConfig(path=tmp_path / "w.duckdb"),
                        run=RunConfig(limit=4, export_dir=None))
    try:
        ids = stages.source_problems(settings, "run-1")["problem_ids"]
        first = stages.generate_batch(settings, "run-1", ids)
        assert stages.evaluate_batch(settings, "run-1", ids)["evaluated_pairs"] == first["verified_pairs"] >= 2
        settings.run.round = 1
        second = stages.generate_batch(settings, "run-2", ids)
        evaluated = stages.evaluate_batch(settings, "run-2", ids)
        summary = stages.run_summary(settings, "run-2")
    finally:
        close_shared_pools()
    assert first["duplicates"] == 0 and second["duplicates"] == first["verified_pairs"]
    assert second["verified_pairs"] == 0 and evaluated["evaluated_pairs"] == 0, "duplicates cost no evaluator"
    assert summary["verified_pairs"] == 0 and summary["stored_pairs"] == first["verified_pairs"]
    assert summary["duplicates"] == {"exact": first["verified_pairs"], "near": 0}
    assert summary["flagged"] == {} and summary["round_verified_pairs"] == 0
    warehouse = Warehouse(settings.warehouse.path)
    _, rows = warehouse.query("SELECT count(*), count(DISTINCT d.duplicate_of), min(p.round) FROM duplicate_pairs d "
                              "JOIN pairs p ON p.pair_id = d.duplicate_of")
    assert rows == [(first["verified_pairs"], first["verified_pairs"], 0)], "each points at its round-0 pair"
    _, unhashed = warehouse.query("SELECT count(*) FROM pairs WHERE variant_ast_hash IS NULL OR flags IS NULL")
    assert unhashed == [(0,)]


def test_quality_settings_come_from_the_config_file(tmp_path: Path):
    from sinq.settings import SettingsError, load_settings

    path = tmp_path / "sinq.toml"
    path.write_text("[quality.dedup]\nnear = false\nnear_threshold = 0.9\n[quality.flags]\nmin_input_chars = 10\n")
    quality = load_settings(path).quality
    assert (quality.dedup.near, quality.dedup.near_threshold, quality.flags.min_input_chars) == (False, 0.9, 10)
    path.write_text("[quality.dedup]\nnear_threshold = 2\n")
    with pytest.raises(SettingsError):
        load_settings(path)
