"""The hostile suite: programs that attack the sandbox. ``sinq sandbox selftest`` and the tests run it on a backend
and check three things for every case: the outcome is the one expected, the verdict against a benign original is
right, and the host and the worker pool are untouched afterwards."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sinq.sandbox.config import SandboxConfig
from sinq.sandbox.outcome import Outcome
from sinq.sandbox.pool import Job, WorkerPool
from sinq.sandbox.verify import Pair, verify_many

BENIGN = 'def f(ctx):\n    return "benign"\n'
PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    program: str | bytes
    kinds: set[str]
    verdict: str | set[str] = "diverges"
    check: Callable[[Outcome, dict], str | None] | None = None
    tags: set[str] = field(default_factory=set)
    reason: str | None = None
    """The verdict's reason code, where the case is about one."""


def _value_is(expected: str) -> Callable[[Outcome, dict], str | None]:
    def check(outcome: Outcome, ctx: dict) -> str | None:
        return None if outcome.value == expected else f"value {outcome.value!r}, expected {expected!r}"
    return check


def _no_secret(outcome: Outcome, ctx: dict) -> str | None:
    text = f"{outcome.value} {outcome.message}"
    return f"secret leaked: {text[:200]}" if ctx["secret"] in text else None


def _limit(name: str) -> Callable[[Outcome, dict], str | None]:
    def check(outcome: Outcome, ctx: dict) -> str | None:
        if outcome.kind == "resource_limit" and outcome.limit != name:
            return f"limit {outcome.limit}, expected {name}"
        return None
    return check


CASES: list[Case] = [
    Case("fork_bomb", "import os\ndef f(ctx):\n    while True:\n        try:\n            os.fork()\n"
         "        except OSError:\n            pass\n", {"timeout"}),
    Case("memory_bomb", "def f(ctx):\n    x = []\n    while True:\n        x.append(bytearray(10**6))\n",
         {"resource_limit"}, check=_limit("memory")),
    Case("memory_single_allocation", "def f(ctx):\n    return len(bytearray(10**11))\n", {"resource_limit"},
         check=_limit("memory")),
    Case("disk_fill_one_file", "def f(ctx):\n    with open('big', 'wb') as out:\n        while True:\n"
         "            out.write(b'x' * 10**6)\n", {"resource_limit"}, check=_limit("file_size")),
    Case("disk_fill_many_files", "def f(ctx):\n    i = 0\n    while True:\n        with open(f'f{i}', 'wb') as out:\n"
         "            out.write(b'x' * 4 * 10**6)\n        i += 1\n", {"raised", "resource_limit", "timeout"}),
    Case("infinite_loop", "def f(ctx):\n    while True:\n        pass\n", {"timeout"}),
    Case("sleep_forever", "import time\ndef f(ctx):\n    time.sleep(10**6)\n", {"timeout"}),
    Case("sigterm_ignoring_loop", "import signal\ndef f(ctx):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "    while True:\n        pass\n", {"timeout"}),
    Case("detached_grandchild", "import os, time\ndef f(ctx):\n    if os.fork() == 0:\n        os.setsid()\n"
         "        if os.fork() == 0:\n            while True:\n                time.sleep(0.05)\n        os._exit(0)\n"
         "    return 'parent returned'\n", {"returned"}, check=_value_is("'parent returned'")),
    Case("grandchild_then_exit", "import os, time\ndef f(ctx):\n    if os.fork() == 0:\n        os.setsid()\n"
         "        while True:\n            time.sleep(0.05)\n    os._exit(0)\n", {"crashed"}),
    Case("busy_threads_after_return", "import threading\ndef f(ctx):\n    def spin():\n        while True:\n"
         "            pass\n    for _ in range(4):\n        threading.Thread(target=spin, daemon=False).start()\n"
         "    return 'benign'\n", {"returned"}, verdict="same", check=_value_is("'benign'")),
    Case("socket_to_localhost", "import socket\ndef f(ctx):\n    s = socket.create_connection(('127.0.0.1', 22), 1)\n"
         "    return 'connected'\n", {"raised"}),
    Case("socket_inet6_and_udp", "import socket\ndef f(ctx):\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "    socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n    return 'sockets'\n", {"raised"}),
    Case("network_interfaces", "def f(ctx):\n    with open('/proc/net/dev') as fh:\n"
         "        names = sorted(line.split(':')[0].strip() for line in fh.readlines()[2:])\n"
         "    return [n for n in names if n != 'lo']\n", {"returned", "raised"}, check=_value_is("[]")),
    Case("read_host_files", "def f(ctx):\n    found = []\n    for p in ctx['read']:\n        try:\n"
         "            with open(p, 'rb') as fh:\n                fh.read(1)\n            found.append(p)\n"
         "        except OSError:\n            pass\n    return found\n", {"returned"}, check=_value_is("[]")),
    Case("list_host_dirs", "import os\ndef f(ctx):\n    seen = []\n    for p in ctx['dirs']:\n        try:\n"
         "            if os.listdir(p):\n                seen.append(p)\n        except OSError:\n            pass\n"
         "    return seen\n", {"returned"}, check=_value_is("[]")),
    Case("write_host_files", "def f(ctx):\n    done = []\n    for p in ctx['write']:\n        try:\n"
         "            with open(p, 'w') as fh:\n                fh.write('pwned')\n            done.append(p)\n"
         "        except OSError:\n            pass\n    return 'written'\n", {"returned"}),
    Case("environment_secrets", "import os\ndef f(ctx):\n    return dict(os.environ)\n", {"returned"},
         check=_no_secret),
    Case("other_process_environments", "import os\ndef f(ctx):\n    found = []\n    for pid in os.listdir('/proc'):\n"
         "        try:\n            found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
         "        except (OSError, ValueError):\n            pass\n    return found\n", {"returned"},
         verdict={"diverges", "unstable"}, check=_no_secret),
    Case("kill_parent", "import os, signal\ndef f(ctx):\n    for pid in (os.getppid(), 1):\n        try:\n"
         "            os.kill(pid, signal.SIGKILL)\n        except OSError:\n            pass\n    return 'alive'\n",
         {"returned"}, check=_value_is("'alive'")),
    Case("kill_everything", "import os, signal\ndef f(ctx):\n    for pid in range(1, 4096):\n"
         "        if pid != os.getpid():\n            try:\n                os.kill(pid, signal.SIGKILL)\n"
         "            except OSError:\n                pass\n    return 'alive'\n", {"returned"},
         check=_value_is("'alive'")),
    Case("os_exit", "import os\ndef f(ctx):\n    os._exit(3)\n", {"crashed"}),
    Case("sys_exit", "import sys\ndef f(ctx):\n    sys.exit(2)\n", {"raised"}),
    Case("segfault_ctypes", "import ctypes\ndef f(ctx):\n    return ctypes.string_at(0)\n", {"crashed"}),
    Case("recursion_bomb", "def f(ctx):\n    return f(ctx)\n", {"raised"}),
    Case("c_stack_overflow", "import sys\nsys.setrecursionlimit(10**7)\ndef f(ctx, n=0):\n    return f(ctx, n + 1)\n",
         {"crashed", "raised", "resource_limit", "timeout"}, verdict={"diverges", "unstable"}),
    Case("output_flood", "def f(ctx):\n    while True:\n        print('x' * 10000)\n", {"resource_limit"},
         check=_limit("file_size")),
    Case("huge_return_value", "def f(ctx):\n    return list(range(5 * 10**6))\n", {"resource_limit"}),
    Case("huge_string_return", "def f(ctx):\n    return 'x' * (50 * 10**6)\n", {"returned", "resource_limit"}),
    Case("self_referential_return", "def f(ctx):\n    a = []\n    a.append(a)\n    d = {}\n    d['self'] = d\n"
         "    return [a, d]\n", {"returned"}),
    Case("unpicklable_return", "import threading\ndef f(ctx):\n"
         "    return [lambda: 1, threading.Lock(), (i for i in [1]), open('/dev/null')]\n", {"returned"}),
    Case("hostile_dunder_methods", "class Evil:\n    def __repr__(self):\n        raise RuntimeError('no')\n"
         "    def __eq__(self, other):\n        raise RuntimeError('no')\n    __hash__ = None\n"
         "def f(ctx):\n    return Evil()\n", {"returned"}),
    Case("non_utf8_source", b"def f(ctx):\n    return '\xff\xfe'\n", {"invalid"}, verdict="invalid"),
    Case("syntax_error_source", "def f(ctx):\n    return (\n", {"invalid"}, verdict="invalid"),
    Case("blocks_on_stdin", "import sys\ndef f(ctx):\n    return sys.stdin.read() + input()\n", {"raised"}),
    Case("fd_exhaustion", "def f(ctx):\n    return [open('/dev/null') for _ in range(100000)]\n", {"raised"}),
    Case("thread_bomb", "import threading, time\ndef f(ctx):\n    while True:\n"
         "        threading.Thread(target=time.sleep, args=(60,)).start()\n", {"raised", "resource_limit"}),
    Case("locked_down_leftovers", "import os\ndef f(ctx):\n    os.makedirs('d/e')\n    open('d/e/x', 'w').write('x')\n"
         "    os.chmod('d/e', 0)\n    os.chmod('d', 0)\n    return 'benign'\n", {"returned"}, verdict="same"),
    Case("forged_result_frame", "import json, os, struct\ndef f(ctx):\n"
         "    data = json.dumps({'kind': 'returned', 'value': 123, 'backend': 'forged', 'digest': 1}).encode()\n"
         "    os.write(3, struct.pack('>I', len(data)) + data)\n    os._exit(0)\n", {"crashed"}),
    Case("forged_clean_frame_with_leftover", "import json, os, struct, time\ndef f(ctx):\n"
         "    if os.fork() == 0:\n        os.setsid()\n        os.close(3)\n        while True:\n"
         "            time.sleep(0.05)\n"
         "    data = json.dumps({'kind': 'raised', 'type': 'ValueError', 'message': 'm', 'threads': 1}).encode()\n"
         "    os.write(3, struct.pack('>I', len(data)) + data)\n    os._exit(0)\n", {"raised", "crashed"},
         verdict={"diverges", "unstable"}),  # about what survives: a forged frame's verdict is the program's own
    Case("plants_symlinks_for_the_next_run", "import os\ndef f(ctx):\n    for name in ('.stdout', 'x'):\n"
         "        try:\n            os.unlink(name)\n        except OSError:\n            pass\n"
         "        os.symlink('/tmp/sinq-work', name)\n    return 'benign'\n", {"returned"}, verdict="same"),
    # a program is a function that exists: whatever happens while its module loads makes it invalid (DESIGN.md §3)
    Case("load_bad_annotation", "from typing import List\ndef f(ctx: List[str + 1]):\n    return 'x'\n", {"invalid"},
         verdict="invalid", reason="variant_fails_to_load"),
    Case("load_missing_module", "import sinq_no_such_module\ndef f(ctx):\n    return 'x'\n", {"invalid"},
         verdict="invalid", reason="variant_fails_to_load"),
    Case("load_raising_decorator", "def deco(fn):\n    raise RuntimeError('no')\n@deco\ndef f(ctx):\n    return 1\n",
         {"invalid"}, verdict="invalid", reason="variant_fails_to_load"),
    Case("load_module_level_raise", "raise SystemExit(0)\ndef f(ctx):\n    return 'x'\n", {"invalid"},
         verdict="invalid", reason="variant_fails_to_load"),
    Case("load_infinite_loop", "while True:\n    pass\ndef f(ctx):\n    return 'x'\n", {"invalid"},
         verdict="invalid", reason="variant_fails_to_load"),
    Case("load_memory_bomb", "x = bytearray(10**11)\ndef f(ctx):\n    return 'x'\n", {"invalid"},
         verdict="invalid", reason="variant_fails_to_load"),
    Case("load_os_exit", "import os\nos._exit(0)\ndef f(ctx):\n    return 'x'\n", {"invalid"}, verdict="invalid",
         reason="variant_fails_to_load"),
    Case("load_fork_bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
         "        pass\ndef f(ctx):\n    return 'x'\n", {"invalid"}, verdict="invalid",
         reason="variant_fails_to_load"),
    Case("entry_point_not_callable", "f = 42\n", {"invalid"}, verdict="invalid", reason="variant_no_entry_point"),
    Case("poisons_builtins", "import builtins\ndef f(ctx):\n    builtins.len = lambda x: 42\n"
         "    builtins.print = None\n    return 'benign'\n", {"returned"}, verdict="same"),
]


def _context(token: str) -> dict:
    home = Path.home()
    return {
        "secret": token,
        "read": [str(p) for p in (PROJECT / "pyproject.toml", PROJECT / "sandbox" / "runner.py", home / ".bashrc",
                                  home / f".sinq-secret-{token}", Path(tempfile.gettempdir()) / f"sinq-secret-{token}",
                                  Path("/etc/shadow"), Path("/root/.ssh/id_rsa"))],
        "dirs": [str(p) for p in (PROJECT, home, Path("/home"), Path("/work"))],
        "write": [str(p / f"sinq-hostile-{token}")
                  for p in (home, Path(tempfile.gettempdir()), PROJECT, Path("/tmp"))],
    }


def selftest_config(config: SandboxConfig) -> SandboxConfig:
    """Short budgets keep the suite quick; the rules are the same."""
    limits = config.limits.model_copy(update={"timeout_s": 2.0, "memory_mb": 256, "max_result_nodes": 500_000})
    return config.model_copy(update={"limits": limits, "longer_budget_factor": 2.0})


def leftover_processes(backend: WorkerPool) -> list[str]:
    """Processes an execution left behind: per-slot uids on the host (local) or extra processes in a container."""
    found: list[str] = []
    block = getattr(backend, "_uid_block", None)
    if block is not None:
        low, high = block.base, block.base + (1 << 14)
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    uid = os.stat(f"/proc/{name}").st_uid
                except OSError:
                    continue
                if low <= uid < high:
                    found.append(f"pid {name} uid {uid}")
    for handle in list(getattr(backend, "_workers", {}).values()):
        container = getattr(handle, "container", None)
        if container is not None:
            try:
                processes = container.top().get("Processes") or []
            except Exception as exc:
                found.append(f"container {container.short_id}: {exc}")
                continue
            if len(processes) > 1:
                found.append(f"container {container.short_id} runs {len(processes)} processes")
    return found


def run_selftest(backend: WorkerPool, cases: list[Case] | None = None) -> dict:
    """Run every case, then check host, processes and pool health; return {cases, contained, failures}."""
    cases = cases if cases is not None else CASES
    config = selftest_config(backend.config)
    original_config = backend.config
    backend.config = config
    token = secrets.token_hex(8)
    os.environ["SINQ_SELFTEST_SECRET"] = token
    ctx = _context(token)
    secrets_on_host = [Path(p) for p in ctx["read"] if "sinq-secret-" in p]
    for path in secrets_on_host:
        path.write_text(f"api_key={token}\n")
    failures: list[dict] = []
    failed: set[str] = set()

    def fail(case: str, why: str) -> None:
        failures.append({"case": case, "why": why})
        failed.add(case)

    try:
        pairs = [Pair(id=c.name, original=BENIGN, variant=c.program, entry_point="f", input={"ctx": ctx})
                 for c in cases]
        verdicts = verify_many(pairs, backend, config)
        for case, verdict in zip(cases, verdicts, strict=True):
            outcome = verdict.variant
            allowed = {case.verdict} if isinstance(case.verdict, str) else case.verdict
            if verdict.verdict not in allowed:
                fail(case.name, f"verdict {verdict.verdict} ({verdict.reason}), expected {case.verdict}")
            elif case.reason is not None and verdict.reason != case.reason:
                fail(case.name, f"reason {verdict.reason}, expected {case.reason}")
            if case.kinds == {"invalid"}:
                continue
            if outcome is None:
                fail(case.name, "no outcome")
                continue
            if outcome.kind not in case.kinds:
                fail(case.name, f"outcome {outcome.kind} ({outcome.message or outcome.value}), expected "
                                f"{sorted(case.kinds)}")
            elif case.check is not None:
                problem = case.check(outcome, ctx)
                if problem:
                    fail(case.name, problem)
        time.sleep(0.2)
        for path in ctx["write"]:
            if Path(path).exists():
                fail("write_host_files", f"{path} appeared on the host")
                Path(path).unlink()
        leftovers = leftover_processes(backend)
        if leftovers:
            fail("detached_grandchild", "processes survived: " + "; ".join(leftovers[:5]))
        health = [Job(program="def f(x):\n    return len(x) * 2\n", entry_point="f", input="{'x': 'abc'}",
                      hash_seed=seed) for seed in config.hash_seeds for _ in range(backend.workers_per_seed * 4)]
        for outcome in backend.run(health):
            if outcome.kind != "returned" or outcome.value != "6":
                fail("pool_health", f"a benign job after the suite gave {outcome.kind} {outcome.value}")
                break
    finally:
        for path in secrets_on_host:
            path.unlink(missing_ok=True)
        backend.config = original_config
        os.environ.pop("SINQ_SELFTEST_SECRET", None)
    return {"cases": len(cases), "contained": len(cases) - len(failed & {c.name for c in cases}),
            "failures": failures, "replaced_workers": backend.replaced}
