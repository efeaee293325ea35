"""What a run shows in the Prefect UI: a markdown summary, a table per source, a difficulty-histogram picture and
a pair viewer (the hardest and a random handful of the run's new pairs as diffs, with the input and outcomes)."""

from __future__ import annotations

import base64
import difflib
import io
import json
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
    hygiene = _hygiene_markdown(summary)
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
| evaluator answers (on inequivalent pairs) | {summary['answers']} |
| equivalent pairs (fuzzed equal, never proven) | {summary.get('equivalent_pairs', 0)} |

**Verification rate** (samples that became a verified pair / samples): {summary['verification_rate']:.1%}
**Evaluator success** (answers whose input really diverges): {_percent(success)} ·
**false alarms** ("No" on an equivalent pair, no divergence): {_percent(summary.get('false_alarm_rate'))} ·
**misses** ("Yes" on an inequivalent pair): {_percent(summary.get('miss_rate'))}
{_equivalence_markdown(summary)}
**Round totals**: {summary['round_verified_pairs']} verified pairs, {summary['round_evaluated_pairs']} labelled.
{hygiene}
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
{_efficiency_markdown(summary)}
Query the data: `sinq sql "SELECT difficulty, count(*) FROM verified_pairs WHERE run_id = '{summary['run_id']}'
GROUP BY 1 ORDER BY 1"`
"""


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _equivalence_markdown(summary: dict) -> str:
    """The other half of the game: equivalent pairs made, what the fuzz filter dropped, the evaluator on them."""
    e = summary.get("equivalence")
    if not e or not e.get("problems_tried"):
        return ""
    dropped = ", ".join(f"`{r}` {n}" for r, n in e["dropped"].items()) or "none"
    shares = summary.get("equivalence_drop_share") or {}
    blamed = ", ".join(f"`{t}` {s:.1%}" for t, s in shares.items() if s) or "none"
    return (f"\n**Equivalent pairs**: {e['pairs']} made from {e['problems_tried']} problems "
            f"({e['pairs_per_problem'] or 0:.2f} per problem; {e['candidates']} candidates, {e['fuzzed']} fuzzed); "
            f"dropped: {dropped}; drop share per transformation: {blamed}. The evaluator answered "
            f"{e['answers']} times on {e['evaluated_pairs']} of them: accuracy {_percent(e['accuracy'])}, "
            f"{e['relabelled']} refuted and relabelled inequivalent.\n")


def _efficiency_markdown(summary: dict) -> str:
    """Verified pairs per CPU-minute and where the sandbox's time went (search, verdicts, evaluation ...)."""
    sandbox = summary.get("sandbox")
    if not sandbox:
        return ""
    rate = summary.get("pairs_per_cpu_minute")
    rows = "\n".join(f"| {purpose} | {seconds:.1f} | {sandbox['executions'].get(purpose, 0)} | "
                     f"{sandbox['shares'].get(purpose, 0.0):.1%} |" for purpose, seconds in sandbox["seconds"].items())
    return f"""
**Verified pairs per CPU-minute**: {'n/a' if rate is None else f'{rate:.1f}'} ({summary['cpu_s']:.0f} CPU-s in all)

## Sandbox time by purpose
| purpose | seconds | executions | share |
|---|---|---|---|
{rows or '| (none) | 0 | 0 | - |'}
"""


def _hygiene_markdown(summary: dict) -> str:
    """The audit figure, duplicates and flags, each when the summary has it."""
    parts = []
    audit = summary.get("audit")
    if audit:
        answers = audit.get("answers", {})
        reasons = ", ".join(f"`{r}`: {n}" for r, n in audit["by_reason"].items()) or "none"
        kinds = audit.get("kinds", {})
        ineq, eq = kinds.get("inequivalent", {}), kinds.get("equivalent", {})
        parts.append(f"""
## Audit (a sample re-verified from scratch: fresh processes, hash seeds {audit['hash_seeds']}, {audit['backend']})
| figure | pairs | inequivalent | equivalent (every fuzzed input) | evaluator answers |
|---|---|---|---|---|
| checked | {audit['checked']} | {ineq.get('checked', 0)} | {eq.get('checked', 0)} | {answers.get('checked', 0)} |
| reproduced | {audit['reproduced']} | {ineq.get('reproduced', 0)} | {eq.get('reproduced', 0)} \
| {answers.get('reproduced', 0)} |
| not reproduced (left the pair views) | {audit['not_reproduced']} | {ineq.get('not_reproduced', 0)} \
| {eq.get('not_reproduced', 0)} | {answers.get('not_reproduced', 0)} |

Not reproduced, by reason: {reasons}
""")
    duplicates = summary.get("duplicates")
    if duplicates:
        rows = "\n".join(f"| {kind} | {n} |" for kind, n in duplicates.items())
        parts.append(f"\n## Duplicates (left out of verified_pairs)\n| kind | pairs |\n|---|---|\n{rows}\n")
    flagged = summary.get("flagged")
    if flagged:
        rows = "\n".join(f"| `{flag}` | {n} |" for flag, n in flagged.items())
        parts.append(f"\n## Flagged pairs (left out of exports by default)\n| flag | pairs |\n|---|---|\n{rows}\n")
    return "".join(parts)


def _fence(text: str, language: str = "") -> str:
    """A code fence longer than any backtick run inside the text, so a program cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("|", "\\|")


def outcome_short(raw: str | dict | None) -> str:
    """An outcome as people read it: `returned 3`, `raised ValueError: bad`, `timeout`."""
    outcome = json.loads(raw) if isinstance(raw, str) else (raw or {})
    kind = outcome.get("kind", "?")
    if kind == "returned":
        return f"returned {outcome.get('value', '')}"
    if kind == "raised":
        message = outcome.get("message")
        return f"raised {outcome.get('type')}" + (f": {message}" if message else "")
    detail = outcome.get("limit") or outcome.get("signal") or outcome.get("reason") or ""
    return f"{kind} {detail}".strip()


def unified_diff(original: str, variant: str) -> str:
    lines = difflib.unified_diff(original.splitlines(), variant.splitlines(), "original", "variant", lineterm="")
    return "\n".join(lines) or "(no textual change)"


def pair_viewer_markdown(run_id: str, pairs: list[dict]) -> str:
    if not pairs:
        return f"# Pair viewer `{run_id}`\n\nThis run stored no verified pair.\n"
    blocks = []
    for number, pair in enumerate(pairs, start=1):
        difficulty = "unlabelled" if pair["difficulty"] is None else f"difficulty {pair['difficulty']}"
        flags = json.loads(pair.get("flags") or "[]")
        literal = pair["diverging_input"]
        shown = literal if len(literal) <= 2000 else literal[:2000] + " …"
        name = pair["source_id"] or pair["source"]
        blocks.append(f"""## {number}. `{name}` · `{pair['entry_point']}` · {difficulty} ({pair['why']})

pair `{pair['pair_id']}`{' · flags ' + ', '.join(f'`{f}`' for f in flags) if flags else ''}

{_fence(unified_diff(pair['original_code'], pair['variant_code']), 'diff')}

**Diverging input**

{_fence(shown, 'python')}

| side | outcome |
|---|---|
| original | {_cell(outcome_short(pair['original_outcome']))} |
| variant | {_cell(outcome_short(pair['variant_outcome']))} |
""")
    hardest = sum(p["why"] == "hardest" for p in pairs)
    return (f"# Pair viewer `{run_id}`\n\nThe {hardest} hardest and {len(pairs) - hardest} random new verified "
            "pairs of this run: original → variant, the input they diverge on, and both outcomes.\n\n"
            + "\n".join(blocks))


def publish_pair_viewer(run_id: str, pairs: list[dict]) -> None:
    create_markdown_artifact(pair_viewer_markdown(run_id, pairs), key="pair-viewer",
                             description="the hardest and a random handful of this run's verified pairs as diffs")


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


def gate_series(curves: list[dict]) -> dict[str, list[tuple[int, float, float, float, bool]]]:
    """Per role and suite, the gate's measured deltas by round: (round, delta, low, high, promoted)."""
    series: dict[str, list[tuple[int, float, float, float, bool]]] = {}
    for c in curves:
        for role, g in (c.get("gate") or {}).items():
            if not g or g.get("passed") is None:
                continue
            for label, f in (g.get("suites") or {}).items():
                if f and f.get("delta") is not None:
                    low, high = f.get("low", f["delta"]), f.get("high", f["delta"])
                    series.setdefault(f"{role}: {label}", []).append((c["round"], f["delta"], low, high,
                                                                      bool(g.get("promoted", g["passed"]))))
    return series


def curves_png(curves: list[dict]) -> bytes:
    """Self-play curves per round: generator validity, evaluator success, share of difficulty 10; beneath them,
    when adapters were gated, each suite's paired delta (candidate - incumbent) with its interval, filled where the
    adapter was promoted and hollow where it was rejected."""
    series = gate_series(curves)
    figure, axes = plt.subplots(2 if series else 1, 1, figsize=(6, 5.5 if series else 3), dpi=100, squeeze=False)
    axis = axes[0][0]
    rounds = [c["round"] for c in curves]
    for key, name in (("generator_validity", "generator validity"),
                      ("evaluator_success_rate", "evaluator success"), ("share_difficulty_10", "share difficulty 10")):
        axis.plot(rounds, [c.get(key) or 0.0 for c in curves], marker="o", label=name)
    axis.set_xlabel("round")
    axis.set_ylim(-0.05, 1.05)
    axis.set_xticks(rounds)
    axis.legend(fontsize=7)
    if series:
        gate_axis = axes[1][0]
        for index, (name, points) in enumerate(sorted(series.items())):
            shift = (index - (len(series) - 1) / 2) * 0.06
            xs = [r + shift for r, *_ in points]
            deltas = [d for _, d, *_ in points]
            errors = [[d - low for _, d, low, _, _ in points], [high - d for _, d, _, high, _ in points]]
            line = gate_axis.errorbar(xs, deltas, yerr=errors, capsize=3, linestyle="-", label=name)
            colour = line[0].get_color()
            gate_axis.scatter(xs, deltas, s=36, zorder=3, edgecolors=colour,
                              facecolors=[colour if promoted else "white" for *_, promoted in points])
        gate_axis.axhline(0.0, color="grey", linewidth=0.8)
        gate_axis.set_xlabel("round (filled: promoted, hollow: rejected)")
        gate_axis.set_ylabel("gate delta")
        gate_axis.set_xticks(rounds)
        gate_axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def publish_curves(curves: list[dict]) -> None:
    png = curves_png(curves)
    create_image_artifact(f"data:image/png;base64,{base64.b64encode(png).decode()}", key="self-play-curves",
                          description="generator validity, evaluator success, share of difficulty 10 per round, "
                                      "and the promotion gate's deltas with their intervals")
    table = "\n".join(f"| {c['round']} | {c.get('generator_validity')} | {c.get('evaluator_success_rate')} | "
                      f"{c.get('share_difficulty_10')} | {c.get('difficulty_histogram')} | {c['trained']} |"
                      for c in curves)
    create_markdown_artifact("# Self-play curves\n\n| round | generator validity | evaluator success | share 10 | "
                             f"difficulty histogram | trained |\n|---|---|---|---|---|---|\n{table}\n",
                             key="self-play-summary")


def gate_curves_markdown(curves: list[dict]) -> str:
    """The promotion gate's figures per round and role (the ``gate`` of each round's curve): passed, and each
    measured suite's delta with its McNemar p."""
    rows = []
    for c in curves:
        for role, g in (c.get("gate") or {}).items():
            if not g or g.get("passed") is None:
                rows.append(f"| {c['round']} | {role} | not measured | |")
                continue
            suites = ", ".join(f"{label} {f['delta']:+.4f}" + (f" (p {f['p_value']:.3g})" if f.get("p_value")
                                                                 is not None else "")
                               for label, f in g["suites"].items() if f) or "-"
            verdict = ("promoted" if g.get("promoted", g["passed"]) else
                       "passed, not promoted (the incumbent changed)" if g["passed"] else "rejected")
            rows.append(f"| {c['round']} | {role} | {verdict} | {suites} |")
    table = "\n".join(rows) or "| - | - | - | - |"
    return ("# Self-play: the promotion gate per round\n\n| round | role | gate | delta per suite |\n"
            f"|---|---|---|---|\n{table}\n")


def publish_gate_curves(curves: list[dict]) -> None:
    create_markdown_artifact(gate_curves_markdown(curves), key="self-play-gate",
                             description="the promotion gate's decision and figures per round and role")


def evaluation_rows(result: dict) -> list[dict]:
    """One table row per suite: its headline metric with the interval and n, or why it was skipped."""
    rows = []
    for s in result["suites"]:
        m = (s.get("metrics") or {}).get(s["headline"]) or {}
        rows.append({"suite": s["label"], "metric": s["headline"], "value": m.get("value"), "low": m.get("low"),
                     "high": m.get("high"), "n": s.get("n"), "eval_id": s.get("eval_id"),
                     "skipped": s.get("skipped")})
    return rows


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def evaluation_png(rows: list[dict], title: str) -> bytes:
    """Each measured suite's headline metric as a point with its interval (skipped suites are left out)."""
    measured = [r for r in rows if r["value"] is not None]
    figure, axis = plt.subplots(figsize=(6, 0.6 * max(len(measured), 1) + 1.2), dpi=100)
    names = [f"{r['suite']} {r['metric']} (n={r['n']})" for r in measured]
    values = [r["value"] for r in measured]
    errors = [[r["value"] - r["low"] for r in measured], [r["high"] - r["value"] for r in measured]]
    axis.errorbar(values, range(len(measured)), xerr=errors, fmt="o", capsize=4, color="#3b6fb6")
    axis.set_yticks(range(len(measured)), names)
    axis.set_xlim(-0.02, max([1.02] + [r["high"] * 1.05 for r in measured]))
    axis.set_title(title, fontsize=9)
    return _png(figure)


def publish_evaluation(result: dict) -> None:
    """The ``evaluate`` flow's table and picture in the UI."""
    rows = evaluation_rows(result)
    who = f"{result['model']}" + (f" + {result['adapter']}" if result["adapter"] else "")
    key = f"evaluation-{result['role']}"
    create_table_artifact(rows, key=key, description=f"evaluation of the {result['role']}: {who}")
    png = evaluation_png(rows, f"{result['role']}: {who}"[-90:])
    create_image_artifact(f"data:image/png;base64,{base64.b64encode(png).decode()}", key=f"{key}-plot",
                          description=f"each suite's headline metric with its interval ({who})")
