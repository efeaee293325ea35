"""`sinq audit`: re-verify what the warehouse holds before training on it (registered in sinq/cli.py).

Exit codes: 0 everything checked reproduced (or nothing to check), 1 something did not reproduce (those pairs are
marked and leave ``verified_pairs``), 2 bad arguments or config, 3 sandbox unavailable, 4 warehouse problem (a
damaged or truncated file included), 70 an internal error (a bug). 1 means "did not reproduce" and nothing else, so
that a script can gate training on it: any other failure has its own code.
Self-contained on purpose: ``python -m sinq.cli`` runs cli.py as ``__main__``, which must not be imported back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sinq.game.errors import SinqError
from sinq.settings import SettingsError, load_settings

NOT_REPRODUCED = 1
INTERNAL_ERROR = 70
"""An audit that failed for a reason of ours (sysexits' EX_SOFTWARE): never 1, which is "did not reproduce"."""
out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def audit(
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: config, SINQ_DB, ./sinq.duckdb)")
                  ] = None,
    sample: Annotated[int | None, typer.Option("--sample", min=1, help="a seeded sample of N pairs of each kind")
                      ] = None,
    all_pairs: Annotated[bool, typer.Option("--all", help="every verified pair (the default without --sample)")
                         ] = False,
    run: Annotated[str | None, typer.Option("--run", help="only the pairs of this run id")] = None,
    seed: Annotated[str, typer.Option("--seed", help="seed of the --sample choice")] = "sinq-audit",
    kind: Annotated[str, typer.Option("--kind", help="pairs to audit: inequivalent (verified_pairs) | equivalent "
                                      "(equivalent_pairs, every fuzzed input) | both")] = "both",
    backend: Annotated[str | None, typer.Option("--backend", help="sandbox backend: local | docker")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config file")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Re-verify stored pairs (verified inequivalent ones on their diverging input, equivalent ones on every input
    they were fuzzed on) and their counted evaluator answers from scratch (fresh sandbox processes, other hash seeds
    than the runs used); pairs that do not reproduce are marked and leave verified_pairs / equivalent_pairs.
    Exit 0 when everything reproduced, 1 when something did not (gate training on it)."""
    from sinq.tasks.audit import KINDS
    from sinq.tasks.audit import audit as run_audit
    from sinq.warehouse.store import Warehouse, WarehouseError

    if sample is not None and all_pairs:
        raise _fail("--sample and --all exclude each other", 2)
    if backend is not None and backend not in ("local", "docker"):
        raise _fail(f"unknown backend {backend!r} (local | docker)", 2)
    if kind != "both" and kind not in KINDS:
        raise _fail(f"unknown pair kind {kind!r} ({' | '.join(KINDS)} | both)", 2)
    kinds = KINDS if kind == "both" else (kind,)
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        raise _fail(str(exc), 2) from exc
    sandbox = settings.sandbox.model_copy(update={"backend": backend}) if backend else settings.sandbox
    warehouse = Warehouse.from_config(settings.warehouse, db)
    if not warehouse.path.exists():
        raise WarehouseError(f"no warehouse at {warehouse.path}", hint="set --db or SINQ_DB")
    try:
        result = run_audit(warehouse, sandbox, sample, run, seed, kinds=kinds)
    except SinqError:
        raise  # one line and its hint, with the class's code (3 sandbox, 4 warehouse), from sinq's exit path
    except Exception as exc:
        raise SinqError(f"internal error in the audit: {type(exc).__name__}: {exc}",
                        hint="a bug: rerun with --debug for the traceback and report it; nothing was marked",
                        exit_code=INTERNAL_ERROR) from exc
    if json_out:
        print(json.dumps(result))
    else:
        _print(result, warehouse.path)
    if result["not_reproduced"]:
        raise typer.Exit(NOT_REPRODUCED)


def _print(result: dict, path: Path) -> None:
    table = Table("subject", "checked", "reproduced", "not reproduced", "why not",
                  title=f"audit {result['audit_run']} of {path} ({result['backend']}, hash seeds "
                        f"{result['hash_seeds'][0]} and {result['hash_seeds'][1]})")
    kinds = [(f"  {kind}", figures) for kind, figures in result.get("kinds", {}).items()]
    for name, figures in (("pairs (final)", result), *kinds, ("pairs' own inputs", result["pairs"]),
                          ("evaluator answers", result["answers"])):
        reasons = ", ".join(f"{r}: {n}" for r, n in figures["by_reason"].items())
        table.add_row(name, str(figures["checked"]), str(figures["reproduced"]), str(figures["not_reproduced"]),
                      reasons)
    out.print(table)
    if result["not_reproduced"]:
        shown = ", ".join(result["not_reproduced_pairs"][:10])
        out.print(f"[red]{result['not_reproduced']} pair(s) did not reproduce and left verified_pairs / "
                  "equivalent_pairs[/red]: "
                  f"{shown}{' …' if result['not_reproduced'] > 10 else ''}\n"
                  f"see: sinq sql \"SELECT * FROM audits WHERE audit_run = '{result['audit_run']}' "
                  "AND NOT reproduced\"")
    elif result["checked"]:
        out.print(f"[green]all {result['checked']} pairs reproduced[/green]")
    else:
        out.print("nothing to audit: no standing pairs selected")
