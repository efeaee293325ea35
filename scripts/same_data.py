"""Do two warehouses hold the same data? Row sets per table, by content, with what is measurement or provenance left
out (timestamps, durations, run ids, the runs table itself). Prints per-table counts and differences as JSON; exit 1
when any table differs. Used to show that a refactor changed no stored pair, verdict or execution:

    python scripts/same_data.py before.duckdb after.duckdb
"""

from __future__ import annotations

import json
import sys

import duckdb

SKIP_TABLES = {"runs", "schema_version", "audits", "training_jobs", "adapters", "training_sets"}
SKIP_COLUMNS = {"created_at", "started_at", "finished_at", "heartbeat_at", "validated_at", "wall_s", "run_id",
                "seconds", "host", "pid", "code_version"}
TIMED = ("wall_s", "run_s", "seconds")


def _untimed(value: object) -> object:
    if isinstance(value, str) and value.startswith("{") and any(f'"{k}"' in value for k in TIMED):
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(data, dict):
            return json.dumps({k: v for k, v in data.items() if k not in TIMED}, sort_keys=True)
    return value


def rows(path: str) -> dict[str, set[tuple]]:
    con = duckdb.connect(path, read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = "
                                            "'BASE TABLE' ORDER BY 1").fetchall()]
        found = {}
        for table in tables:
            if table in SKIP_TABLES:
                continue
            columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                 "table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
            kept = [c for c in columns if c not in SKIP_COLUMNS and not c.endswith("_at")]
            listed = ", ".join(f'"{c}"' for c in kept)
            found[table] = {tuple(_untimed(v) for v in row)
                            for row in con.execute(f'SELECT {listed} FROM "{table}"').fetchall()}
        return found
    finally:
        con.close()


def main(before: str, after: str) -> int:
    a, b = rows(before), rows(after)
    report = {}
    for table in sorted(set(a) | set(b)):
        left, right = a.get(table, set()), b.get(table, set())
        report[table] = {"before": len(left), "after": len(right), "only_before": len(left - right),
                         "only_after": len(right - left)}
    same = all(r["only_before"] == r["only_after"] == 0 for r in report.values())
    print(json.dumps({"same": same, "tables": report}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
