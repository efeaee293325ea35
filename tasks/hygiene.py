"""Data hygiene when pairs are stored: each new pair gets its variant's AST hash, its degenerate flags and, when it
repeats an earlier pair of the same problem (any round, any run, or earlier in the same batch), ``duplicate_of``.

The rules are game/'s (``game.similarity``, ``game.degenerate``); this module feeds them what is stored. It runs as
``Warehouse.store``'s ``prepare`` hook, inside the write transaction: the warehouse is insert-only, so the marks
must be on the row when it is inserted, and looking up earlier pairs in the same transaction means two writers can
never both miss each other.

"Same problem" is the problem id; a pair without one (``sinq verify --db``) is keyed by its original program.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial

import duckdb

from sinq.game.config import DedupConfig, QualityConfig
from sinq.game.degenerate import flags
from sinq.game.similarity import Fingerprint, code_tokens, fingerprint, near_duplicate
from sinq.warehouse import queries

MARKS = ("variant_ast_hash", "duplicate_of", "duplicate_kind", "similarity", "flags")


@lru_cache(maxsize=1024)
def _tokens(original: str) -> tuple[str, ...]:
    return tuple(code_tokens(original))


@lru_cache(maxsize=16384)
def _fingerprint(original: str, variant: str, shingle: int, num_perm: int, seed: int) -> Fingerprint:
    """Stored pairs are compared batch after batch: their fingerprints are computed once per process."""
    return fingerprint(_tokens(original), variant, shingle, num_perm, seed)


@dataclass
class _Group:
    """What one problem (or one original, for pairs without a problem) already holds."""

    by_hash: dict[str, str] = field(default_factory=dict)
    canonical: list[tuple[str, str, Fingerprint]] = field(default_factory=list)


def _key(row: dict) -> tuple[str, str, str]:
    """Pairs are duplicates only of pairs of the same kind: an equivalent variant that looks like an inequivalent one
    of its problem is still the other half of the game, not a repeat."""
    kind = row.get("pair_kind") or "inequivalent"
    if row.get("problem_id"):
        return kind, "problem", row["problem_id"]
    return kind, "original", row["original_program_id"]


def _stored_groups(con: duckdb.DuckDBPyConnection, keys: set[tuple[str, str, str]],
                   dedup: DedupConfig) -> dict[tuple[str, str, str], _Group]:
    """Every stored pair of these problems/originals; canonical (non-duplicate) ones first, then oldest first, so
    that an AST hash points at the pair it first belonged to."""
    problems = sorted({k for _, by, k in keys if by == "problem"})
    originals = sorted({k for _, by, k in keys if by == "original"})
    groups: dict[tuple[str, str, str], _Group] = {key: _Group() for key in keys}
    for row in queries.stored_pairs(con, problems, originals):
        pair_id, original_id = row["pair_id"], row["original_program_id"]
        stored_hash, canonical, original, variant = (row["variant_ast_hash"], row["canonical"], row["original"],
                                                     row["variant"])
        group = groups.get(_key(row))
        if group is None:
            continue
        fp = None
        if original is not None and variant is not None:
            fp = _fingerprint(original, variant, dedup.shingle, dedup.num_perm, dedup.seed)
        digest = stored_hash or (fp.ast_hash if fp else None)
        if digest:
            group.by_hash.setdefault(digest, pair_id)
        if canonical and fp is not None:
            group.canonical.append((pair_id, original_id, fp))
    return groups


def mark_pairs(con: duckdb.DuckDBPyConnection, batch: dict[str, list[dict]], quality: QualityConfig) -> None:
    """Fill in the hygiene marks (``MARKS``) of every pair row of ``batch``, in batch order; a pair already stored
    keeps (and shows) its stored marks, so a re-stored pair is never its own duplicate."""
    pairs = batch.get("pairs") or []
    if not pairs:
        return
    dedup = quality.dedup
    codes = {r["program_id"]: r["code"] for r in batch.get("programs", [])}
    literals = {r["input_id"]: r["literal"] for r in batch.get("inputs", [])}
    wanted_programs = {p[k] for p in pairs for k in ("original_program_id", "variant_program_id")} - set(codes)
    codes |= queries.codes(con, wanted_programs)
    literals |= queries.literals(con, {p["input_id"] for p in pairs} - set(literals))
    seeds = queries.seed_inputs(con, {p["problem_id"] for p in pairs if p.get("problem_id")})
    stored = queries.pair_marks(con, {p["pair_id"] for p in pairs}, MARKS)
    groups = _stored_groups(con, {_key(p) for p in pairs}, dedup)
    done: dict[str, dict] = {}
    for row in pairs:
        if row["pair_id"] in stored:
            row.update(stored[row["pair_id"]])
            continue
        if row["pair_id"] in done:
            row.update({k: done[row["pair_id"]][k] for k in MARKS})
            continue
        original, variant = codes[row["original_program_id"]], codes[row["variant_program_id"]]
        fp = _fingerprint(original, variant, dedup.shingle, dedup.num_perm, dedup.seed)
        row["variant_ast_hash"] = fp.ast_hash
        row["flags"] = json.dumps(flags(original, variant, literals.get(row["input_id"], ""),
                                        seeds.get(row.get("problem_id") or "", []), quality.flags))
        group = groups[_key(row)]
        row["duplicate_of"] = row["duplicate_kind"] = row["similarity"] = None
        exact = group.by_hash.get(fp.ast_hash) if fp.ast_hash else None
        if exact is not None:
            row.update(duplicate_of=exact, duplicate_kind="exact", similarity=1.0)
        elif dedup.near:
            best: tuple[float, str] | None = None
            for pair_id, original_id, earlier in group.canonical:
                similarity = near_duplicate(earlier, fp, dedup.near_threshold,
                                            same_original=original_id == row["original_program_id"])
                if similarity is not None and (best is None or similarity > best[0]):
                    best = (similarity, pair_id)
            if best is not None:
                row.update(duplicate_of=best[1], duplicate_kind="near", similarity=round(best[0], 4))
        if fp.ast_hash:
            group.by_hash.setdefault(fp.ast_hash, row["pair_id"])
        if row["duplicate_of"] is None:
            group.canonical.append((row["pair_id"], row["original_program_id"], fp))
        done[row["pair_id"]] = row


def preparer(quality: QualityConfig) -> Callable[[duckdb.DuckDBPyConnection, dict[str, list[dict]]], None]:
    """The ``prepare`` hook for ``Warehouse.store`` that marks a batch's pairs."""
    return partial(mark_pairs, quality=quality)
