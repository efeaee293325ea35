"""Exports users train on: Parquet or JSONL of ``verified_pairs`` with a dataset card that says what is inside
(counts per round, source and split, difficulty, mutation kinds, edit sizes, what was left out and why), loadable
by ``datasets``. Pairs with degenerate flags are left out unless asked for; duplicates and pairs an audit could not
reproduce are never in ``verified_pairs``. Also the rows of the run's pair viewer.

An export is written into a fresh folder next to the target and renamed into place, so a full disk or any error
leaves the previous export and its card as they were; nothing is ever written through a link. sinq marks its
exports with a manifest and replaces only those (and only with ``force``): a folder it did not write, a project
with its own README.md, is refused untouched."""

from __future__ import annotations

import ctypes
import difflib
import errno
import hashlib
import json
import os
import secrets
import shutil
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sinq.warehouse.queries import check_run
from sinq.warehouse.store import Warehouse, WarehouseError

EXPORT_COLUMNS = """pair_id, problem_id, source, split, entry_point, original_code, variant_code, diverging_input,
    CAST(original_outcome AS VARCHAR) AS original_outcome, CAST(variant_outcome AS VARCHAR) AS variant_outcome,
    generator, round, difficulty, evaluator, CAST(CAST(flags AS JSON) AS VARCHAR[]) AS flags, run_id,
    CAST(created_at AS VARCHAR) AS created_at"""
FLAGGED = "json_array_length(CAST(flags AS JSON)) > 0"
EQUIVALENT_COLUMNS = """e.pair_id, e.problem_id, e.source, e.split, e.entry_point, e.original_code, e.variant_code,
    CAST(CAST(e.transformations AS JSON) AS VARCHAR[]) AS transformations, e.evidence, e.inputs_tried,
    list(i.literal ORDER BY t.n) AS inputs, e.generator, e.round, e.answers, e.said_yes, e.false_alarms, e.run_id,
    CAST(e.created_at AS VARCHAR) AS created_at"""
"""The other half of the game (``equivalent_pairs``): each pair with how it was made and every input it was fuzzed
equal on, as Python literals."""
EDIT_BUCKETS = ((1, "1"), (2, "2"), (5, "3-5"), (10, "6-10"), (25, "11-25"))
MANIFEST = ".sinq-export.json"
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def changed_lines(original: str, variant: str) -> int:
    """Lines the edit touches: a rewritten line counts once, a deleted or an inserted line once each; blank lines
    and trailing whitespace do not count (a generator that reformats the code did not edit it there)."""

    def lines(code: str) -> list[str]:
        return [line.rstrip() for line in code.splitlines() if line.strip()]

    matcher = difflib.SequenceMatcher(None, lines(original), lines(variant), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def edit_bucket(lines: int) -> str:
    if lines == 0:
        return "0"
    return next((name for top, name in EDIT_BUCKETS if lines <= top), f">{EDIT_BUCKETS[-1][0]}")


def export(warehouse: Warehouse, out: Path, fmt: str = "parquet", run_id: str | None = None,
           include_flagged: bool = False, force: bool = False) -> dict:
    """Write the export (data file, dataset card, manifest) to ``out``; ``force`` replaces a previous sinq export
    there. Returns the summary the card describes."""
    if fmt not in ("parquet", "jsonl"):
        raise WarehouseError(f"unknown export format {fmt!r} (parquet | jsonl)", exit_code=2)
    out = Path(out)
    if run_id is not None:
        check_run(warehouse, run_id)
    check_target(out, force)
    scope, params = ("run_id = ?", [run_id]) if run_id else ("true", [])
    kept = scope if include_flagged else f"{scope} AND NOT {FLAGGED}"
    target = out / f"verified_pairs.{fmt}"
    with warehouse.reading() as con:
        def rows(sql: str) -> list[tuple]:
            return con.execute(sql, params).fetchall()

        table = con.sql(f"SELECT {EXPORT_COLUMNS} FROM verified_pairs WHERE {kept} ORDER BY pair_id",
                        params=params).to_arrow_table()
        runs = rows(f"SELECT DISTINCT run_id FROM verified_pairs WHERE {kept} ORDER BY 1")
        sources = rows(f"SELECT v.source, any_value(p.licence), count(*) FROM verified_pairs v LEFT JOIN problems p "
                       f"ON p.problem_id = v.problem_id WHERE {kept.replace('run_id', 'v.run_id')} GROUP BY 1 "
                       "ORDER BY 1")
        per = {name: rows(f"SELECT {column}, count(*) FROM verified_pairs WHERE {kept} GROUP BY 1 ORDER BY 1 "
                          "NULLS LAST")
               for name, column in (("round", "round"), ("split", "split"), ("difficulty", "difficulty"))}
        kinds = rows(f"SELECT coalesce(s.detail, '(unknown)'), count(*) FROM verified_pairs v JOIN pairs p "
                     f"USING (pair_id) LEFT JOIN samples s ON s.sample_id = p.sample_id "
                     f"WHERE {kept.replace('run_id', 'v.run_id').replace('flags', 'v.flags')} GROUP BY 1 "
                     "ORDER BY 2 DESC, 1")
        flags = rows(f"SELECT flag, count(*) FROM (SELECT unnest(CAST(CAST(flags AS JSON) AS VARCHAR[])) AS flag "
                     f"FROM verified_pairs WHERE {scope}) GROUP BY 1 ORDER BY 2 DESC, 1")
        flagged = rows(f"SELECT count(*) FROM verified_pairs WHERE {scope} AND {FLAGGED}")[0][0]
        left_out = dict(rows(f"SELECT coalesce(duplicate_kind, status), count(*) FROM all_pairs WHERE {scope} "
                             "AND pair_kind = 'inequivalent' AND status IN ('duplicate', 'not_reproduced') "
                             "GROUP BY 1 ORDER BY 1"))
        equivalent = con.sql(
            f"SELECT {EQUIVALENT_COLUMNS} FROM equivalent_pairs e, "
            "unnest(from_json(e.input_ids, '[\"VARCHAR\"]')) WITH ORDINALITY AS t(input_id, n) "
            f"JOIN inputs i ON i.input_id = t.input_id WHERE {scope.replace('run_id', 'e.run_id')} "
            "GROUP BY ALL ORDER BY e.pair_id", params=params).to_arrow_table()
    edits = Counter(edit_bucket(changed_lines(o, v)) for o, v in zip(
        table.column("original_code").to_pylist(), table.column("variant_code").to_pylist(), strict=True))
    order = ["0"] + [name for _, name in EDIT_BUCKETS] + [f">{EDIT_BUCKETS[-1][0]}"]
    equivalent_target = out / f"equivalent_pairs.{fmt}"
    summary = {
        "file": str(target), "format": fmt, "pairs": table.num_rows, "runs": [r[0] for r in runs],
        "equivalent_pairs": equivalent.num_rows,
        "equivalent_file": str(equivalent_target) if equivalent.num_rows else None,
        "sources": [{"source": s, "licence": licence, "pairs": n} for s, licence, n in sources],
        "flagged_left_out": 0 if include_flagged else flagged, "flagged_included": flagged if include_flagged else 0,
        "duplicates_left_out": sum(n for k, n in left_out.items() if k != "not_reproduced"),
        "not_reproduced_left_out": left_out.get("not_reproduced", 0),
        "statistics": {
            "per_round": {str(k): n for k, n in per["round"]},
            "per_split": {str(k): n for k, n in per["split"]},
            "difficulty": {("unlabelled" if k is None else str(k)): n for k, n in per["difficulty"]},
            "mutation_kind": dict(kinds),
            "changed_lines": {name: edits[name] for name in order if edits[name]},
            "duplicates_left_out": {k: n for k, n in left_out.items() if k != "not_reproduced"},
            "flags": dict(flags),
        },
    }

    def write(folder: Path) -> list[str]:
        written = [target.name]
        _write_table(table, folder / target.name, fmt)
        if equivalent.num_rows:
            _write_table(equivalent, folder / equivalent_target.name, fmt)
            written.append(equivalent_target.name)
        with (folder / "README.md").open("x") as handle:
            handle.write(dataset_card(summary))
        return [*written, "README.md"]

    publish(out, write, force, {"pairs": summary["pairs"], "format": fmt, "runs": summary["runs"]})
    return summary


def _write_table(table, data: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, str(data))
        return
    with data.open("x") as handle:
        for row in table.to_pylist():
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _manifest(folder: Path) -> dict | None:
    """The manifest of a sinq export in ``folder`` (a regular file, never a link), or None."""
    path = folder / MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "sinq" and isinstance(data.get("files"), list) \
        else None


def _legacy_export(folder: Path, names: list[str]) -> bool:
    """An export sinq wrote before it left manifests: its data file and its own card, plain files, nothing else."""
    data = {"verified_pairs.parquet", "verified_pairs.jsonl"}
    if "README.md" not in names or not set(names) - {"README.md"} or not set(names) <= data | {"README.md"}:
        return False
    if any((folder / name).is_symlink() or not (folder / name).is_file() for name in names):
        return False
    try:
        with (folder / "README.md").open() as handle:
            head = handle.read(400)
    except OSError:
        return False
    return head.startswith("---\n") and "pretty_name: sinq verified pairs" in head


def check_target(out: Path, force: bool) -> None:
    """Refuse, before any work, a target sinq must not replace: a link, a file, a folder it did not write (or one
    holding files beyond its own), a previous export without ``force``."""
    if out.is_symlink():
        raise WarehouseError(f"{out} is a symbolic link: sinq export never writes through links",
                             hint="export into the folder it points to by its real path")
    if out.exists() and not out.is_dir():
        raise WarehouseError(f"{out} is a file, not a folder", hint="name a new or empty folder (sinq creates it)")
    if not out.is_dir():
        return
    try:
        names = sorted(entry.name for entry in out.iterdir())
    except OSError as exc:
        raise WarehouseError(f"cannot read {out}: {exc.strerror or exc}") from exc
    if not names:
        return
    manifest = _manifest(out) or ({"files": names} if _legacy_export(out, names) else None)
    if manifest is None:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise WarehouseError(f"{out} is not empty and is not a sinq export ({shown}): refusing to overwrite it",
                             hint="export into a new or empty folder")
    extra = sorted(set(names) - set(manifest["files"]) - {MANIFEST})
    if extra:
        raise WarehouseError(f"{out} holds files the sinq export there did not write ({', '.join(extra[:3])})",
                             hint="move them away or export into a new folder")
    if not force:
        raise WarehouseError(f"{out} holds a previous sinq export", hint="--force replaces it")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(out: Path, write: Callable[[Path], list[str]], force: bool, about: dict) -> None:
    """Let ``write`` fill a fresh folder next to ``out``, add the manifest, and rename it into place; on any error
    the folder is removed and ``out`` is as it was."""
    out = Path(os.path.abspath(out))  # "." has a name and a parent; links are not resolved
    check_target(out, force)
    parent = out.parent
    work = parent / f".{out.name}.sinq-tmp-{secrets.token_hex(4)}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        work.mkdir()
        files = write(work)
        manifest = {"tool": "sinq", "version": 1, "files": files,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"), **about}
        with (work / MANIFEST).open("x") as handle:
            handle.write(json.dumps(manifest, indent=1) + "\n")
        for name in [*files, MANIFEST]:
            _sync(work / name)
        _sync(work)
        if out.is_dir() and any(out.iterdir()):
            if not _exchange(work, out):
                old = parent / f".{out.name}.sinq-old-{secrets.token_hex(4)}"
                out.rename(old)
                try:
                    work.rename(out)
                except OSError:
                    old.rename(out)
                    raise
                work = old
        else:
            work.rename(out)  # over an empty folder, or a new name
        _sync(parent)
    except OSError as exc:
        raise WarehouseError(f"cannot write the export to {out}: {exc.strerror or exc}",
                             hint="check the folder is writable and has room; a previous export there is unchanged"
                             ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the half-written new export, or the replaced old one


def _table(title: str, column: str, counts: dict) -> str:
    body = "\n".join(f"| {k} | {n} |" for k, n in counts.items()) or "| (none) | 0 |"
    return f"### {title}\n\n| {column} | pairs |\n|---|---|\n{body}\n"


def dataset_card(summary: dict) -> str:
    licences = sorted({s["licence"] for s in summary["sources"] if s["licence"]}) or ["see sources"]
    sources = "\n".join(f"| {s['source']} | {s['licence'] or 'unknown'} | {s['pairs']} |" for s in summary["sources"])
    stats = summary["statistics"]
    flag_note = (f"{summary['flagged_left_out']} flagged pairs were left out (`sinq export --include-flagged` keeps "
                 "them)" if summary["flagged_left_out"] else
                 f"{summary['flagged_included']} flagged pairs are included" if summary["flagged_included"] else
                 "no pair carries a flag")
    duplicates = ", ".join(f"{n} {k}" for k, n in stats["duplicates_left_out"].items()) or "none"
    sections = "\n".join([
        _table("Pairs per round", "round", stats["per_round"]),
        _table("Pairs per source", "source", {s["source"]: s["pairs"] for s in summary["sources"]}),
        _table("Pairs per split", "split", stats["per_split"]),
        _table("Difficulty (0 = every evaluator answer found a divergence, 10 = none did)", "difficulty",
               stats["difficulty"]),
        _table("Mutation kind (generator's own label)", "kind", stats["mutation_kind"]),
        _table("Edit size (lines changed, original → variant)", "changed lines", stats["changed_lines"]),
        _table("Degenerate flags (over every verified pair in scope, left out or not)", "flag", stats["flags"]),
    ])
    return f"""---
license: other
pretty_name: sinq verified pairs
tags:
- code
- program-equivalence
configs:
- config_name: default
  data_files: {Path(summary['file']).name}{_equivalent_config(summary)}
---
# sinq verified pairs

Pairs of programs that are **not** semantically equivalent, each with a diverging input, produced by the semantic
inequivalence game and verified by running both programs in a sandbox (strict outcome comparison, stable over
repeated runs and two hash seeds). Exported {datetime.now(UTC).isoformat(timespec='seconds')}.

- pairs: {summary['pairs']}
- runs: {', '.join(summary['runs']) or 'none'}
- licences of the source problems: {', '.join(licences)}
- left out: duplicates {duplicates}; not reproduced by an audit {summary['not_reproduced_left_out']}; {flag_note}

| source | licence | pairs |
|---|---|---|
{sources}

## Statistics

{sections}
Columns: pair_id, problem_id, source, split, entry_point, original_code, variant_code, diverging_input (a Python
literal dict of keyword arguments), original_outcome and variant_outcome (JSON), generator, round, difficulty (0-10,
empty until evaluated), evaluator, flags (degenerate-flag codes, empty for clean pairs), run_id, created_at.
{_equivalent_section(summary)}"""


def _equivalent_config(summary: dict) -> str:
    if not summary.get("equivalent_file"):
        return ""
    return f"\n- config_name: equivalent\n  data_files: {Path(summary['equivalent_file']).name}"


def _equivalent_section(summary: dict) -> str:
    if not summary.get("equivalent_file"):
        return ""
    return f"""
## Equivalent pairs (config `equivalent`, {Path(summary['equivalent_file']).name})

{summary['equivalent_pairs']} pairs of programs that behaved **the same** on every input tried: the original and a
rewrite by composed semantics-preserving transformations (or an LLM's equivalent rewrite), each candidate fuzzed
against the original before it was believed. Fuzzed equal, **never proven** equivalent. Columns: pair_id,
problem_id, source, split, entry_point, original_code, variant_code, transformations, evidence (construction | llm),
inputs_tried, inputs (every input tried, Python literals), generator, round, answers / said_yes / false_alarms (the
evaluator's figures on it), run_id, created_at.
"""


def viewer_pairs(warehouse: Warehouse, run_id: str, hardest: int = 3, handful: int = 3) -> list[dict]:
    """The run's pair viewer: its ``hardest`` verified pairs (highest difficulty) and a ``handful`` more chosen
    by a hash seeded with the run id (the same run always shows the same ones)."""
    if not warehouse.path.exists():
        return []
    with warehouse.reading() as con:
        cursor = con.execute(
            "SELECT v.pair_id, pr.source_id, v.source, v.entry_point, v.original_code, v.variant_code, "
            "v.diverging_input, CAST(v.original_outcome AS VARCHAR), CAST(v.variant_outcome AS VARCHAR), "
            "v.difficulty, CAST(v.flags AS VARCHAR) FROM verified_pairs v LEFT JOIN problems pr USING (problem_id) "
            "WHERE v.run_id = ? ORDER BY v.difficulty DESC NULLS LAST, v.pair_id", [run_id])
        names = ["pair_id", "source_id", "source", "entry_point", "original_code", "variant_code",
                 "diverging_input", "original_outcome", "variant_outcome", "difficulty", "flags"]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    top = [{**r, "why": "hardest"} for r in rows[:hardest]]
    rest = sorted(rows[hardest:], key=lambda r: hashlib.sha256(f"{run_id}:{r['pair_id']}".encode()).hexdigest())
    return top + [{**r, "why": "random"} for r in rest[:handful]]
