"""What a run shows in the Prefect UI: a markdown summary, a table per source, and a difficulty-histogram picture."""

from __future__ import annotations

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")  # imported with the flow module, once per process, not once per run
import matplotlib.pyplot as plt
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact


def slug(text: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "source"


def summary_markdown(summary: dict, source: dict, timings: dict) -> str:
    histogram = summary["difficulty_histogram"]
    hist_rows = "\n".join(f"| {d} | {n} |" for d, n in histogram.items()) or "| - | 0 |"
    reasons = "\n".join(f"| `{r}` | {n} |" for r, n in summary["top_rejection_reasons"]) or "| (none) | 0 |"
    success = summary["evaluator_success_rate"]
    stages = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in timings.items())
    return f"""# Nightly generation `{summary['run_id']}`

Round {summary['round']} · generator `{summary['generator']}` · evaluator `{summary['evaluator']}`

| stage | count |
|---|---|
| problems loaded | {source['loaded']} |
| problems usable (pass their own tests) | {source['usable']} |
| problems validated this run | {source['validated_now']} |
| samples generated | {summary['samples']} |
| valid samples | {summary['valid_samples']} |
| verified pairs (sandbox says they diverge) | {summary['verified_pairs']} |
| pairs labelled with a difficulty | {summary['evaluated_pairs']} |
| evaluator answers | {summary['answers']} |

**Verification rate** (verified pairs / samples): {summary['verification_rate']:.1%}
**Evaluator success** (answers whose input really diverges): {'n/a' if success is None else f'{success:.1%}'}
**Round totals**: {summary['round_verified_pairs']} verified pairs, {summary['round_evaluated_pairs']} labelled.

## Top rejection reasons
| reason | samples |
|---|---|
{reasons}

## Difficulty histogram (0 = every answer found a divergence, 10 = none did)
| difficulty | pairs |
|---|---|
{hist_rows}

## Time per stage (s)
| stage | seconds |
|---|---|
{stages}

Query the data: `sinq sql "SELECT difficulty, count(*) FROM verified_pairs WHERE run_id = '{summary['run_id']}'
GROUP BY 1 ORDER BY 1"`
"""


def histogram_png(histogram: dict[str, int], title: str) -> bytes:
    levels = list(range(11))
    counts = [histogram.get(str(level), 0) for level in levels]
    figure, axis = plt.subplots(figsize=(6, 3), dpi=100)
    axis.bar(levels, counts, color="#3b6fb6")
    axis.set_xticks(levels)
    axis.set_xlabel("difficulty (failed evaluator answers, scaled to 0-10)")
    axis.set_ylabel("pairs")
    axis.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def publish(summary: dict, source: dict, timings: dict) -> None:
    create_markdown_artifact(summary_markdown(summary, source, timings), key="nightly-summary",
                             description="counts per stage, rejection reasons, evaluator success, difficulty")
    rows = summary["sources"] or [{"source": source["source"], "problems": 0, "samples": 0, "valid_samples": 0,
                                   "verified_pairs": 0}]
    for row in rows:
        table = [{**row, "loaded": source["loaded"], "usable": source["usable"],
                  "rejected_problems": sum(source["rejected"].values())}] if row["source"] else [row]
        create_table_artifact(table, key=f"source-{slug(row['source'])}", description=f"source {row['source']}")
    png = histogram_png(summary["difficulty_histogram"], f"difficulty, run {summary['run_id'][:8]}")
    create_image_artifact(f"data:image/png;base64,{base64.b64encode(png).decode()}", key="difficulty-histogram",
                          description="difficulty histogram of the pairs this run labelled")
