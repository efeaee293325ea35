"""Independent re-check of `verified_pairs`, outside sinq's runner: each side runs in a fresh `python3 -I` inside
bwrap (no network, private /tmp) and the call's outcome is compared by repr of the value or the exception's type and
message. A side that fails to load, or two equal outcomes, count as not reproduced.

Usage: .venv/bin/python scripts/recheck_fresh.py sinq.duckdb   (prints one JSON line)
"""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb

DRIVER = r"""
import ast, json, sys
src, entry, literal = json.load(sys.stdin)
ns = {"__name__": "__recheck__"}
try:
    exec(compile(src, "<program>", "exec"), ns)
    fn = ns[entry]
    assert callable(fn)
except BaseException as e:
    print(json.dumps(["load_error", type(e).__name__]))
    sys.exit()
try:
    value = fn(**ast.literal_eval(literal))
    print(json.dumps(["returned", type(value).__name__, repr(value)[:5000]]))
except BaseException as e:
    print(json.dumps(["raised", type(e).__name__, str(e)[:500]]))
"""


def outcome(source: str, entry: str, literal: str, seed: int = 11) -> tuple:
    command = ["bwrap", "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--unshare-net", "--die-with-parent", "--",
               "/usr/bin/env", f"PYTHONHASHSEED={seed}", sys.executable, "-I", "-c", DRIVER]
    try:
        done = subprocess.run(command, input=json.dumps([source, entry, literal]), capture_output=True, text=True,
                              timeout=10)
    except subprocess.TimeoutExpired:
        return ("timeout",)
    lines = done.stdout.strip().splitlines()
    return tuple(json.loads(lines[-1])) if lines else ("crashed", done.returncode)


def main(db: str) -> dict:
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute("SELECT pair_id, entry_point, original_code, variant_code, diverging_input "
                           "FROM verified_pairs").fetchall()
    failures = []
    for pair_id, entry, original, variant, literal in rows:
        left, right = outcome(original, entry, literal), outcome(variant, entry, literal)
        if "load_error" in (left[0], right[0]) or left == right:
            failures.append([pair_id[:12], left[:2], right[:2]])
    return {"pairs": len(rows), "reproduced": len(rows) - len(failures), "not_reproduced": len(failures),
            "examples": failures[:10]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
