"""The sandbox's fast paths (issue 14 item 2) give the same answers as the slow ones they replace, and a cached
program is never served for a changed one."""

from __future__ import annotations

import ast
import json
import math
import os
import threading
import time

import pytest

from sinq.sandbox import Job, runner
from sinq.sandbox.local import LocalBackend
from tests.conftest import fast_config

SCALARS = [0, 1, -1, 255, -4096, 2**63, 10**40, -(10**40), True, False, None, 0.0, -0.0, 1.5, 3.0, -7.0, 1e300,
           -1e-300, float("nan"), float("inf"), -float("inf"), "", "abc", "é€", "\udcff", "a" * 5000]


@pytest.mark.parametrize("loose", [False, True])
def test_scalar_fast_path_is_byte_identical_to_the_encoder(loose: bool) -> None:
    for value in SCALARS:
        assert runner.scalar_encoding(value, loose) == runner.Encoder(loose=loose).encode(value), value


def test_scalar_fast_path_declines_everything_else() -> None:
    class Number(int):
        pass

    for value in ([1], (1,), {1: 2}, {1}, b"x", bytearray(b"x"), 1j, Number(3), object()):
        assert runner.scalar_encoding(value, False) is None
        assert runner.scalar_encoding(value, True) is None


def test_describe_value_digests_match_the_encoder() -> None:
    for value in [*SCALARS, [1, 2], {"a": (1.0, None)}, {3, 1}]:
        described = runner.describe_value(value, 10_000, "strict,loose")
        assert described["digest"] == runner.digest(runner.Encoder().encode(value))
        assert described["loose_digest"] == runner.digest(runner.Encoder(loose=True).encode(value))
        assert described["type"] == runner.qualname(type(value))


def test_frame_encoder_round_trips_like_json() -> None:
    outcome = {"kind": "returned", "value": "é\udcff\x00\"\\", "run_s": 1.25e-05, "nan": float("nan"),
               "inf": float("inf"), "n": 2**70, "none": None, "flag": True, "params": "x:POSITIONAL_OR_KEYWORD"}
    data = runner._json_bytes(outcome)
    assert data.isascii()
    expected = json.loads(json.dumps(outcome, ensure_ascii=True, allow_nan=True))
    decoded = runner._json_value(data)
    assert decoded.keys() == expected.keys()
    for key, value in expected.items():
        assert decoded[key] == value or (isinstance(value, float) and math.isnan(value) and math.isnan(decoded[key]))
    with pytest.raises(TypeError):
        runner._json_bytes({"value": object()})


def test_frame_decoder_rejects_what_json_rejects() -> None:
    assert runner._json_value(b' {"kind": "raised"} ') == {"kind": "raised"}  # the slow path keeps json's leniency
    for bad in (b'{"kind": "returned"} trailing', b'{"kind": ', b"[1, 2", b"\xff"):
        with pytest.raises((ValueError, StopIteration)):
            runner._json_value(bad)
    frame = runner._json_bytes({"kind": "returned", "value": "1"})
    assert runner._decode_frame(len(frame).to_bytes(4, "big") + frame) == {"kind": "returned", "value": "1"}
    assert runner._decode_frame(len(frame).to_bytes(4, "big") + frame + b"x") is None
    assert runner._decode_frame(b"\x00\x00\x00\x02{}") is None  # no kind


SIGNATURES = [
    "def f(a, b=1):\n    pass\n",
    "def f(a, /, b, *args, c, d=2, **kw):\n    pass\n",
    "def f(*, only):\n    pass\n",
    "def f(*args):\n    pass\n",
    "def f(**kw):\n    pass\n",
    "def f():\n    x = 1\n    return x\n",
    "def f(a, b, /):\n    pass\n",
    "class K:\n    def f(self, q, *, r):\n        pass\ndef f(x):\n    return [y for y in x]\n",
]


def test_parameter_shapes_from_the_index_equal_shapes_read_in_the_child() -> None:
    import inspect

    for source in SIGNATURES:
        code = compile(source, "<program>", "exec", dont_inherit=True)
        runner._SHAPES.clear()
        namespace: dict = {}
        exec(code, namespace)
        cold = runner._params(namespace["f"])
        runner.index_shapes(code)
        assert id(namespace["f"].__code__) in runner._SHAPES
        assert runner._params(namespace["f"]) == cold
        expected = ",".join(f"{p.name}:{p.kind.name}" for p in inspect.signature(namespace["f"]).parameters.values())
        assert cold == expected
    runner._SHAPES.clear()


def test_rlimits_precomputed_once_per_batch_are_the_ones_a_child_computes() -> None:
    job = {**fast_config().limits.wire(), "timeout_s": 1.5, "memory_mb": 300}
    pairs = dict(runner.rlimits(job))
    import resource

    assert pairs[resource.RLIMIT_AS] == (300 << 20, 300 << 20)
    assert pairs[resource.RLIMIT_CPU] == (3, 4)
    assert pairs[resource.RLIMIT_CORE] == (0, 0)
    assert set(runner.LIMIT_FIELDS) <= set(job)


def test_thread_count_reads_procfs_links() -> None:
    assert runner._thread_count() == len(os.listdir("/proc/self/task"))
    started = threading.Event()
    stop = threading.Event()

    def hold() -> None:
        started.set()
        stop.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    started.wait(5)
    try:
        assert runner._thread_count() == len(os.listdir("/proc/self/task")) >= 2
    finally:
        stop.set()
        thread.join()


# ---- through real workers
def _cold_outcomes(jobs: list[Job]) -> list:
    with LocalBackend(fast_config()) as cold:
        return cold.run(jobs)


def test_cached_program_gives_the_outcomes_of_a_cold_worker(local_backend) -> None:
    program = "import math\nSEEN = []\ndef f(x):\n    SEEN.append(x)\n    return math.factorial(x % 12), len(SEEN)\n"
    jobs = [Job(program=program, entry_point="f", input=f"{{'x': {i}}}") for i in range(12)]
    warm = local_backend.run(jobs)
    again = local_backend.run(jobs)  # compiled once, then served from the worker's cache
    cold = _cold_outcomes(jobs)
    assert [o.kind for o in warm] == ["returned"] * len(jobs)
    # every execution starts from the freshly loaded module: SEEN never carries over between executions
    assert [o.value for o in warm] == [o.value for o in again] == [o.value for o in cold]
    assert all(o.value.endswith(", 1)") for o in warm)
    assert [o.digest for o in warm] == [o.digest for o in cold]
    assert [o.params for o in warm] == [o.params for o in cold] == ["x:POSITIONAL_OR_KEYWORD"] * len(jobs)


def test_changed_program_is_not_served_from_the_cache(local_backend) -> None:
    first = "def f(a, b=2):\n    return a * b\n"
    second = "def f(a, *, b=2):\n    return a + b\n"
    one = local_backend.run([Job(program=first, entry_point="f", input="{'a': 5}")])[0]
    two = local_backend.run([Job(program=second, entry_point="f", input="{'a': 5}")])[0]
    back = local_backend.run([Job(program=first, entry_point="f", input="{'a': 5}")])[0]
    assert (one.value, two.value, back.value) == ("10", "7", "10")
    assert one.params == back.params == "a:POSITIONAL_OR_KEYWORD,b:POSITIONAL_OR_KEYWORD"
    assert two.params == "a:POSITIONAL_OR_KEYWORD,b:KEYWORD_ONLY"


def test_every_slot_shows_its_directory_at_one_path(local_backend) -> None:
    """Children enter their slot's mount namespace (made once per slot): the path a program sees, and what it
    writes there, do not depend on the slot, and nothing written survives into the next execution."""
    info = local_backend.info()
    if info.get("per_slot_uids"):
        assert info.get("slot_namespaces") == info["slots"]
    program = ("import os, time\ndef f(i):\n    time.sleep(0.01)\n    before = sorted(os.listdir('.'))\n"
               "    open('mine', 'w').write(str(i))\n    return os.getcwd(), before, os.getuid()\n")
    outcomes = local_backend.run([Job(program=program, entry_point="f", input=f"{{'i': {i}}}") for i in range(24)])
    assert [o.kind for o in outcomes] == ["returned"] * 24, [o.message for o in outcomes]
    values = [ast.literal_eval(o.value) for o in outcomes]
    assert {cwd for cwd, _, _ in values} == {"/tmp/work"}
    assert all("mine" not in before for _, before, _ in values)
    if info.get("per_slot_uids"):
        assert len({uid for _, _, uid in values}) > 1  # several slots took part


def test_report_fd_is_drained_across_many_pipe_buffers(local_backend) -> None:
    """What a child writes on the result fd is read in 64 KiB chunks while it runs: 200 KB of noise arrives whole
    (and spoils the frame: crashed), 2 MB hits the cap (resource_limit), and neither hangs."""
    program = "import os\ndef f(n):\n    os.write(3, b'x' * n)\n    return 1\n"
    noisy, flood = local_backend.run([Job(program=program, entry_point="f", input=f"{{'n': {n}}}")
                                      for n in (200_000, 2_000_000)])
    assert (noisy.kind, noisy.exit_code) == ("crashed", 0), noisy
    assert (flood.kind, flood.limit) == ("resource_limit", "result_size"), flood


def test_bench_measures_pool_and_baseline_in_alternating_rounds(local_backend) -> None:
    from sinq.sandbox.bench import interleaved_rates

    started = time.perf_counter()
    rate, failed, base = interleaved_rates(local_backend, 80, 80, rounds=2)
    assert failed == 0 and rate > 0 and base > 0
    assert time.perf_counter() - started < 120


def test_workers_start_from_the_runner_compiled_from_the_current_source(tmp_path, monkeypatch) -> None:
    """The local worker runs runner.py compiled by its own interpreter (a smaller heap: cheaper forks), cached by
    source digest; a cache directory that is not private to us is never used (the source runs instead)."""
    import marshal

    from sinq.sandbox import local

    python, _ = local.base_interpreter()
    compiled = local.compiled_runner(python)
    assert compiled is not None
    with open(compiled, "rb") as handle:
        code = marshal.loads(handle.read()[16:])
    assert "Worker" in code.co_names
    if local.bwrap_path() is not None:
        assert local.COMPILED_IN_SANDBOX in local.bwrap_command(fast_config(), 1)
    monkeypatch.setattr(local.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(local, "_COMPILED", {})
    (tmp_path / f"sinq-runner-{os.getuid()}").mkdir(mode=0o777)
    os.chmod(tmp_path / f"sinq-runner-{os.getuid()}", 0o777)
    assert local.compiled_runner(python) is None


def test_a_report_is_settled_after_the_batch_as_it_was_when_reaped() -> None:
    """Outcomes are built at the batch's end from the raw frame and exit status: the same dict as before."""
    body = runner._json_bytes({"kind": "returned", "value": "1", "threads": 1})
    frame = len(body).to_bytes(4, "big") + body
    assert frame.endswith(runner.CLEAN_TAIL)
    settled = runner.Worker._settle((frame, 0, True, False, False, 2.0, 0.25))
    assert settled == {"kind": "returned", "value": "1", "wall_s": 0.25}
    assert runner.Worker._settle((b"", 9, False, False, False, 2.0, 0.1))["reason"] == "fails_to_load"
    assert runner.Worker._settle((frame, 0, True, True, False, 2.0, 3.0))["kind"] == "timeout"
