"""`sinq train bench-leakage`: can a surface-only classifier tell the pair kinds apart? (issue 27; registered in
sinq/cli.py with ``train_app.command("bench-leakage")(bench_leakage)``). Its own module so the shared CLI file stays
small; self-contained because ``python -m sinq.cli`` runs cli.py as ``__main__``, which must not be imported back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sinq.settings import load_settings

out = Console()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def _cell(rate: dict) -> str:
    return f"{rate['value']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}] ({rate['model']})"


def _show(figures: dict) -> None:
    accuracy = figures["accuracy"]
    head = Table("figure", "value", title="surface leakage: pair kinds told apart by their look")
    head.add_row("pairs", f"{figures['pairs']} ({', '.join(f'{n} {k}' for k, n in figures['kinds'].items())}; "
                          f"{figures['problems']} problems)")
    head.add_row("accuracy", f"{accuracy['value']:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}] "
                             f"({figures['model']}, {figures['folds']} folds grouped by problem)")
    head.add_row("majority", f"{figures['majority']:.3f} ({figures['majority_kind']})")
    head.add_row("excess", f"{figures['excess_over_majority']:+.3f} (target <= +{figures['target']['max_excess']}: "
                           f"{'met' if figures['target']['met'] else 'NOT met'})")
    head.add_row("hard split", f"{figures['hard_split']} pairs misclassified")
    out.print(head)
    groups = Table("feature group", "features", "alone", "all but it", title="ablation")
    for group, row in figures["by_feature_group"].items():
        groups.add_row(group, str(row["features"]), _cell(row["alone"]), _cell(row["without"]))
    out.print(groups)
    strongest = Table("feature", "accuracy alone", title="strongest single features")
    for row in figures["strongest_features"]:
        strongest.add_row(row["feature"], f"{row['accuracy']:.3f}")
    out.print(strongest)


def bench_leakage(
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: config, SINQ_DB, ./sinq.duckdb)")
                  ] = None,
    run: Annotated[str | None, typer.Option("--run", help="only the pairs this run id made")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="cross-validation folds, grouped by problem")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="seed of the folds and the classifier")] = 0,
    hard_split: Annotated[Path | None, typer.Option("--hard-split", help="write the pairs the classifier gets "
                                                    "wrong (the hard split) here, one JSON line each")] = None,
    predictions: Annotated[Path | None, typer.Option("--predictions", help="write every pair's out-of-fold "
                                                     "prediction (kind, predicted, fold) here, one JSON line each")
                           ] = None,
    check: Annotated[bool, typer.Option("--check", help="exit 1 when the accuracy is more than 15 points above the "
                                        "majority rate (DESIGN.md §7)")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config file")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Surface leakage: how well a classifier on surface features alone (diff, token and identifier shape, AST
    node counts, length; never semantics) tells equivalent from inequivalent pairs, cross-validated with folds
    grouped by problem, beside the majority rate, per feature group."""
    from sinq.training.leakage import bench_leakage as measure
    from sinq.warehouse.store import Warehouse

    settings = load_settings(config)
    warehouse = Warehouse.from_config(settings.warehouse, db)
    measured = measure(warehouse, run, folds, seed)
    if hard_split is not None:
        _write_jsonl(hard_split, measured.hard)
    if predictions is not None:
        _write_jsonl(predictions, measured.predictions)
    if json_out:
        print(json.dumps(measured.figures))
    else:
        _show(measured.figures)
    if check and not measured.figures["target"]["met"]:
        raise typer.Exit(1)
