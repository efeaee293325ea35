"""Exports users train on: Parquet or JSONL of ``verified_pairs`` with a dataset card, loadable by ``datasets``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from warehouse.store import Warehouse, WarehouseError

EXPORT_COLUMNS = """pair_id, problem_id, source, entry_point, original_code, variant_code, diverging_input,
    CAST(original_outcome AS VARCHAR) AS original_outcome, CAST(variant_outcome AS VARCHAR) AS variant_outcome,
    generator, round, difficulty, evaluator, run_id, CAST(created_at AS VARCHAR) AS created_at"""


def export(warehouse: Warehouse, out: Path, fmt: str = "parquet", run_id: str | None = None) -> dict:
    if fmt not in ("parquet", "jsonl"):
        raise WarehouseError(f"unknown export format {fmt!r} (parquet | jsonl)")
    out.mkdir(parents=True, exist_ok=True)
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    target = out / f"verified_pairs.{fmt}"
    with warehouse.reading() as con:
        table = con.sql(f"SELECT {EXPORT_COLUMNS} FROM verified_pairs {where} ORDER BY pair_id",
                        params=params).to_arrow_table()
        runs = con.execute(f"SELECT DISTINCT run_id FROM verified_pairs {where} ORDER BY 1", params).fetchall()
        sources = con.execute(
            f"SELECT v.source, any_value(p.licence), count(*) FROM verified_pairs v LEFT JOIN problems p "
            f"ON p.problem_id = v.problem_id {where.replace('run_id', 'v.run_id')} GROUP BY 1 ORDER BY 1",
            params).fetchall()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, target)
    else:
        with target.open("w") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {
        "file": str(target), "format": fmt, "pairs": table.num_rows, "runs": [r[0] for r in runs],
        "sources": [{"source": s, "licence": licence, "pairs": n} for s, licence, n in sources],
    }
    (out / "README.md").write_text(dataset_card(summary))
    return summary


def dataset_card(summary: dict) -> str:
    licences = sorted({s["licence"] for s in summary["sources"] if s["licence"]}) or ["see sources"]
    sources = "\n".join(f"| {s['source']} | {s['licence'] or 'unknown'} | {s['pairs']} |" for s in summary["sources"])
    return f"""---
license: other
pretty_name: sinq verified pairs
configs:
- config_name: default
  data_files: {Path(summary['file']).name}
---
# sinq verified pairs

Pairs of programs that are **not** semantically equivalent, each with a diverging input, produced by the semantic
inequivalence game and verified by running both programs in a sandbox (strict outcome comparison, stable over
repeated runs and two hash seeds). Exported {datetime.now(UTC).isoformat(timespec='seconds')}.

- pairs: {summary['pairs']}
- runs: {', '.join(summary['runs']) or 'none'}
- licences of the source problems: {', '.join(licences)}

| source | licence | pairs |
|---|---|---|
{sources}

Columns: pair_id, problem_id, source, entry_point, original_code, variant_code, diverging_input (a Python literal
dict of keyword arguments), original_outcome and variant_outcome (JSON), generator, round, difficulty (0-10, empty
until evaluated), evaluator, run_id, created_at.
"""
