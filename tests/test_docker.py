"""The Docker backend on a real engine: same verdicts, the hostile suite contained, dead containers replaced."""

from __future__ import annotations

import pytest

from sinq.sandbox import Job, Pair, verify_many
from sinq.sandbox.hostile import CASES, run_selftest

pytestmark = pytest.mark.docker

ONE = "def f(x):\n    return x + 1\n"


def test_containers_are_locked_down(docker_backend) -> None:
    handle = docker_backend.worker(docker_backend.config.hash_seeds[0], 0)
    host = handle.container.attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["Memory"] == host["MemorySwap"] > 0
    assert host["PidsLimit"] > 0
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert handle.info["uid"] != 0
    assert handle.info["seccomp"] == "on"


def test_verdicts_match_the_rules(docker_backend) -> None:
    pairs = [
        Pair("value", ONE, "def f(x):\n    return x + 2\n", "f", {"x": 1}),
        Pair("same-exc", "def f(x):\n    return [][x]\n", "def f(x):\n    return [][x + 1]\n", "f", {"x": 0}),
        Pair("random", ONE, "import random\ndef f(x):\n    return x + random.random()\n", "f", {"x": 1}),
        Pair("seed", "def f(n):\n    return sorted({str(i) for i in range(n)})\n",
             "def f(n):\n    return list({str(i) for i in range(n)})\n", "f", {"n": 30}),
        Pair("hang", ONE, "def f(x):\n    while True:\n        pass\n", "f", {"x": 1}),
    ]
    verdicts = {v.id: (v.verdict, v.reason) for v in verify_many(pairs, docker_backend)}
    assert verdicts == {
        "value": ("diverges", "different_value"),
        "same-exc": ("same", "same_exception"),
        "random": ("unstable", "variant_nondeterministic"),
        "seed": ("unstable", "variant_depends_on_hash_seed"),
        "hang": ("diverges", "one_side_does_not_halt"),
    }


def test_outcomes_record_the_image(docker_backend) -> None:
    outcome = docker_backend.run([Job(program=ONE, entry_point="f", input="{'x': 1}")])[0]
    assert outcome.backend == "docker"
    assert outcome.runtime == f"docker {docker_backend.image_id[:19]}"


def test_a_dead_container_is_replaced_and_its_batch_rerun(docker_backend) -> None:
    seed = docker_backend.config.hash_seeds[0]
    victim = docker_backend.worker(seed, 0)
    before = docker_backend.replaced
    victim.container.kill()
    jobs = [Job(program=ONE, entry_point="f", input=f"{{'x': {i}}}", hash_seed=seed) for i in range(40)]
    outcomes = docker_backend.run(jobs)
    assert [o.value for o in outcomes] == [str(i + 1) for i in range(40)]
    assert docker_backend.replaced > before


@pytest.fixture(scope="module")
def docker_selftest(docker_backend):
    return run_selftest(docker_backend)


@pytest.mark.parametrize("case", [c.name for c in CASES] + ["pool_health"])
def test_hostile_case_is_contained_in_docker(docker_selftest, case: str) -> None:
    assert [f["why"] for f in docker_selftest["failures"] if f["case"] == case] == []
