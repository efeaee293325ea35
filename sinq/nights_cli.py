"""`sinq pipeline nights`: N consecutive nightly passes on one warehouse, and what each added (issue 28; registered
in sinq/cli.py with ``pipeline_app.command("nights")(nights)``). A night is a sampling pass: the bench names them
night-1 … night-N and shows whether every night still adds new, unique, verified pairs. Self-contained because
``python -m sinq.cli`` runs cli.py as ``__main__``, which must not be imported back."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sinq.game.errors import SinqError
from sinq.settings import Settings, load_settings, settings_error

out = Console()
err = Console(stderr=True)
HARD = 5
"""A pair is hard from this difficulty on (the issue's hard share: difficulty >= 5)."""


def night_figures(pass_id: str, summary: dict, wall_s: float, cumulative: int) -> dict:
    """One night's line: what it added (non-duplicate verified pairs, standing equivalent pairs), its duplicates,
    the problems it skipped as exhausted, the share of its labelled pairs at difficulty >= 5 and its wall time."""
    histogram = {int(k): v for k, v in (summary.get("difficulty_histogram") or {}).items()}
    labelled = sum(histogram.values())
    duplicates = summary.get("duplicates") or {}
    return {"pass": pass_id, "new_pairs": summary["verified_pairs"],
            "new_equivalent_pairs": summary.get("equivalent_pairs", 0),
            "duplicates": sum(duplicates.values()), "duplicates_by_kind": duplicates,
            "exhausted_problems": summary.get("exhausted_problems", 0),
            "hard_share": round(sum(n for d, n in histogram.items() if d >= HARD) / labelled, 4) if labelled else None,
            "wall_s": round(wall_s, 2), "cumulative_unique_pairs": cumulative}


def _settings(config: Path | None, source: str | None, limit: int | None, db: Path | None) -> Settings:
    from pydantic import ValidationError

    settings = load_settings(config)
    data = settings.model_dump()
    data["run"].update({k: v for k, v in {"source": source, "limit": limit}.items() if v is not None})
    data["run"]["export_dir"] = None  # the bench measures the nights, not the snapshots
    if db is not None:
        data["warehouse"]["path"] = db
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise settings_error(exc, "settings (config and flags)") from exc


def nights(
    count: Annotated[int, typer.Option("--nights", min=1, help="consecutive passes (night-1 … night-N)")] = 3,
    source: Annotated[str | None, typer.Option("--source", help="problem source (default: [run] source)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most this many problems")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="the warehouse the nights share (default: a new one in a "
                                                         "temporary folder)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config file")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Run N nightly passes on one warehouse (exports off) and print per night what it added: new unique verified
    pairs, new equivalent pairs, duplicates, exhausted problems, hard share (difficulty >= 5), wall seconds, and
    the cumulative unique pairs."""
    import logging
    import os

    from sinq.flows import server

    folder = None
    if db is None:
        folder = tempfile.TemporaryDirectory(prefix="sinq-nights-")
        db = Path(folder.name) / "nights.duckdb"
    settings = _settings(config, source, limit, db)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server.ensure_api()
    if json_out:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from sinq.flows.nightly import for_settings
    from sinq.warehouse.passes import verified_pair_count
    from sinq.warehouse.store import Warehouse

    logging.getLogger("prefect").setLevel(logging.WARNING)
    lines = []
    try:
        for night in range(1, count + 1):
            pass_id = f"night-{night}"
            settings.run.pass_id = pass_id
            started = time.perf_counter()
            state = for_settings(settings)(settings.model_dump(mode="json"), return_state=True)
            wall = time.perf_counter() - started
            if not state.is_completed():
                raise SinqError(f"{pass_id}: run {state.state_details.flow_run_id} {state.name}: {state.message}",
                                exit_code=1)
            cumulative = verified_pair_count(Warehouse(db, settings.warehouse.lock_timeout_s))
            lines.append(night_figures(pass_id, state.result(), wall, cumulative))
            if not json_out:
                err.print(f"[dim]{pass_id}: {lines[-1]['new_pairs']} new pairs in {wall:.1f} s[/dim]")
    finally:
        if folder is not None:
            folder.cleanup()
    result = {"source": settings.run.source, "db": None if folder else str(db), "nights": lines,
              "cumulative_unique_pairs": lines[-1]["cumulative_unique_pairs"] if lines else 0}
    if json_out:
        print(json.dumps(result))
        return
    table = Table("pass", "new pairs", "new equivalent", "duplicates", "exhausted", "hard share", "wall s",
                  "cumulative", title=escape(f"nights on {settings.run.source}"))
    for line in lines:
        table.add_row(*(escape(str(line[k])) for k in ("pass", "new_pairs", "new_equivalent_pairs", "duplicates",
                                                       "exhausted_problems", "hard_share", "wall_s",
                                                       "cumulative_unique_pairs")))
    out.print(table)
