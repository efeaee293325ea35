"""The `sinq` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sinq import (
    audit_cli,
    code_version,
    eval_classify_cli,
    eval_cli,
    eval_equivalence_cli,
    eval_game_cli,
    leakage_cli,
    nights_cli,
)
from sinq.game.config import QualityConfig
from sinq.game.errors import SinqError
from sinq.sandbox.config import SandboxConfig
from sinq.settings import SettingsError, load_settings, settings_error

_debug = False


class UsageError(SinqError):
    """An argument the command cannot use (a kind, role or id that does not exist): exit 2, like a bad config."""

    exit_code = 2


def _debugging() -> bool:
    return _debug or os.environ.get("SINQ_DEBUG") == "1"


def _console_errors_one_line() -> None:
    """After Prefect is imported: its console tracebacks become one line unless --debug (the UI keeps them)."""
    if not _debugging():
        from sinq.logs import one_line_tracebacks

        one_line_tracebacks()


class _App(typer.Typer):
    """The one exit path: a SinqError is one red line (and its hint) with its class's exit code; anything else one
    line and exit 1; the traceback only with --debug or SINQ_DEBUG=1. Click's own usage errors stay as they are."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        try:
            return super().__call__(*args, **kwargs)
        except SinqError as exc:
            if _debugging():
                traceback.print_exc()
            message = " ".join(str(exc.message).splitlines())  # one line, whatever the message holds
            Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
            if exc.hint:
                Console(stderr=True).print(f"  {escape(exc.hint)}", soft_wrap=True, style="dim")
            sys.exit(exc.exit_code)
        except Exception as exc:
            if _debugging():
                traceback.print_exc()
            what = str(exc).splitlines()[0] if str(exc).strip() else ""
            hint = "" if _debugging() else " (run with --debug for the traceback)"
            Console(stderr=True).print(f"[red]internal error:[/red] {escape(type(exc).__name__)}"
                                       f"{': ' + escape(what) if what else ''}{hint}", soft_wrap=True)
            sys.exit(INTERNAL_ERROR)


INTERNAL_ERROR = 70
"""A bug of ours (sysexits' EX_SOFTWARE), never 1: 1 is "the work failed" (a run ended Failed, an audit did not
reproduce), which a script gates on."""
app = _App(help="sinq: a data factory for code-reasoning data (the semantic inequivalence game).",
           no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="markdown")
sandbox_app = typer.Typer(help="Sandbox: benchmark, self-test, image.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
db_app = typer.Typer(help="Warehouse: info, benchmark.", no_args_is_help=True)
app.add_typer(db_app, name="db")
sources_app = typer.Typer(help="Problem sources: list, validate.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
agents_app = typer.Typer(help="Agents: the model-free baselines; the LLM bench.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
out = Console()
err = Console(stderr=True)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error (or SINQ_DEBUG=1)")
                           ] = False) -> None:
    """sinq: a data factory for code-reasoning data (the semantic inequivalence game)."""
    global _debug
    _debug = debug


BackendOpt = Annotated[str | None, typer.Option("--backend", help="sandbox backend: local | docker")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: config, SINQ_DB, ./sinq.duckdb)")]
PAIR_FIELDS = ("id", "original", "variant", "entry_point", "input")


def _check_backend(backend: str | None) -> None:
    if backend is not None and backend not in ("local", "docker"):
        raise SettingsError(f"unknown backend {backend!r} (local | docker)")


def _sandbox_config(config: Path | None, backend: str | None, **overrides: object) -> SandboxConfig:
    settings = load_settings(config)
    sandbox = settings.sandbox
    _check_backend(backend)
    if backend is not None:
        sandbox = sandbox.model_copy(update={"backend": backend})
    limits = {k: v for k, v in overrides.items() if k in ("timeout_s", "memory_mb") and v is not None}
    if limits:
        sandbox = sandbox.model_copy(update={"limits": sandbox.limits.model_copy(update=limits)})
    rest = {k: v for k, v in overrides.items() if k not in limits and v is not None}
    from pydantic import ValidationError

    try:
        return SandboxConfig.model_validate({**sandbox.model_dump(), "limits": sandbox.limits.model_dump(), **rest})
    except ValidationError as exc:
        raise settings_error(exc, "sandbox settings (config and flags)", SandboxConfig) from exc


def _open(config: SandboxConfig):
    """The configured backend (SandboxUnavailable, exit 3, says why not)."""
    from sinq.sandbox import open_backend

    return open_backend(config)


def read_pairs(path: Path) -> Iterator[tuple[object, str | None]]:
    """Yield (Pair, None) per good line and (id, problem) per bad one; blank lines are skipped."""
    from sinq.sandbox.verify import Pair

    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            fallback = f"line-{number}"
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                yield fallback, f"malformed_line: {exc}"
                continue
            if not isinstance(record, dict):
                yield fallback, "malformed_line: not a JSON object"
                continue
            pair_id = str(record.get("id", fallback))
            missing = [f for f in PAIR_FIELDS[1:] if f not in record]
            if missing:
                yield pair_id, f"missing_field: {', '.join(missing)}"
                continue
            wrong = next((side for side in ("original", "variant") if not isinstance(record[side], str)), None)
            if wrong is not None:  # settled here, as _prepare would: such a line never reaches the warehouse
                yield pair_id, (f"{wrong}_no_program: {wrong} program is not a string "
                                f"(got {type(record[wrong]).__name__})")
                continue
            if not isinstance(record["entry_point"], str):
                yield pair_id, f"no_entry_point: entry point {record['entry_point']!r} is not an identifier"
                continue
            yield Pair(id=pair_id, original=record["original"], variant=record["variant"],
                       entry_point=record["entry_point"], input=record["input"]), None


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="JSONL with id, original, variant, entry_point, input", exists=True,
                                         dir_okay=False)],
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    compare: Annotated[str | None, typer.Option(help="strict | loose")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds per execution")] = None,
    batch: Annotated[int, typer.Option(help="pairs verified together")] = 1000,
    db: DbOpt = None,
) -> None:
    """Settle each (original, variant, input) claim: one verdict per line, in input order. With --db, every
    verdict and execution is stored in the warehouse under a new run."""
    from sinq.sandbox.outcome import Verdict
    from sinq.sandbox.verify import verify_many

    cfg = _sandbox_config(config, backend, compare=compare, timeout_s=timeout)
    recorder = _Recorder(_warehouse(db, config), cfg, str(file), load_settings(config).quality) if db else None
    counts: Counter = Counter()
    rows: list[Verdict] = []

    def emit(verdicts: list[Verdict]) -> None:
        for verdict in verdicts:
            counts[(verdict.verdict, verdict.reason)] += 1
            if json_out:
                line = {"id": verdict.id, "verdict": verdict.verdict, "reason": verdict.reason,
                        "original": verdict.original.public() if verdict.original else None,
                        "variant": verdict.variant.public() if verdict.variant else None}
                if verdict.detail:
                    line["detail"] = verdict.detail
                sys.stdout.write(json.dumps(line) + "\n")
            else:
                rows.append(verdict)
        sys.stdout.flush()

    with _open(cfg) as pool, Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=err, disable=json_out) as progress:
        bar = progress.add_task("verify", total=None)
        pending: list = []

        def flush() -> None:
            pairs = [p for p, _ in pending if not isinstance(p, Verdict)]
            verdicts = verify_many(pairs, pool, cfg) if pairs else []
            if recorder is not None:
                recorder.store(pairs, verdicts)
            settled = iter(verdicts)
            emit([p if isinstance(p, Verdict) else next(settled) for p, _ in pending])
            progress.advance(bar, len(pending))
            pending.clear()

        for item, problem in read_pairs(file):
            if problem is not None:
                reason, _, detail = problem.partition(": ")
                pending.append((Verdict(id=str(item), verdict="invalid", reason=reason, detail=detail), None))
            else:
                pending.append((item, None))
            if len(pending) >= batch:
                flush()
        flush()
    if recorder is not None:
        recorder.finish()
        err.print(f"stored in {recorder.warehouse.path} as run {recorder.run_id}")
    if not json_out:
        table = Table("id", "verdict", "reason", "original", "variant", title=f"{file}")
        for verdict in rows[:200]:
            table.add_row(verdict.id, verdict.verdict, verdict.reason, _short(verdict.original),
                          _short(verdict.variant))
        out.print(table)
        if len(rows) > 200:
            out.print(f"... {len(rows) - 200} more (use --json for all)")
        summary = Table("verdict", "reason", "pairs", title="summary")
        for (verdict_kind, reason), count in sorted(counts.items()):
            summary.add_row(verdict_kind, reason, str(count))
        out.print(summary)


def _warehouse(db: Path | None, config: Path | None):
    return _settings_warehouse(config, db)[1]


def _mark_dead_runs(warehouse) -> list[str]:
    """Runs left ``running`` by a killed process become ``crashed`` (and Crashed in Prefect when an API is
    configured); the rows they stored stay as they are."""
    from sinq.tasks.liveness import crash_in_prefect, reap_stale_runs

    dead = [d["run_id"] for d in reap_stale_runs(warehouse)]
    if dead:
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():  # never an ephemeral server just for this
            crash_in_prefect(dead)
    return dead


class _Recorder:
    """Stores what `sinq verify --db` settles: a run row, then verdicts and executions batch by batch. Ids are
    content (programs, entry point, input, the verdict rules), so verifying a file again stores nothing new; a pair
    that repeats an earlier pair of the same original under another input is stored as its duplicate. A
    ``sandbox_error`` (the sandbox failed to run a side) is reported, never stored: it is not a fact about the
    programs."""

    def __init__(self, warehouse, config: SandboxConfig, source: str, quality: QualityConfig | None = None) -> None:
        import uuid
        from datetime import UTC, datetime

        from sinq.tasks.liveness import run_identity
        from sinq.warehouse.records import content_id

        self.warehouse = warehouse
        self.config = config
        self.quality = quality or QualityConfig()
        self.run_id = f"verify-{uuid.uuid4().hex[:12]}"
        snapshot = config.model_dump(mode="json")
        self.run_row = {"run_id": self.run_id, "kind": "verify", "status": "running", "config": json.dumps(snapshot),
                        "config_hash": content_id(snapshot), "code_version": code_version(),
                        "tags": json.dumps({"source": source}), "started_at": datetime.now(UTC), **run_identity()}
        self._store({"runs": [self.run_row]})

    def _store(self, batch: dict, prepare=None) -> None:
        from sinq.warehouse.store import WarehouseError

        try:
            self.warehouse.store(batch, prepare=prepare)
        except WarehouseError as exc:
            err.print(f"[red]warehouse:[/red] {exc}")
            raise typer.Exit(4) from exc

    def store(self, pairs: list, verdicts: list) -> None:
        from datetime import UTC, datetime

        from sinq.tasks.hygiene import preparer
        from sinq.warehouse import queries
        from sinq.warehouse.records import merge, pair_rows, verdict_rows

        settled = [(p, v) for p, v in zip(pairs, verdicts, strict=True) if v.reason != "sandbox_error"]
        if len(settled) < len(pairs):
            err.print(f"[yellow]{len(pairs) - len(settled)} pair(s) not stored: the sandbox failed to run them "
                      "(sandbox_error); verify them again[/yellow]")
        batch = merge(*[verdict_rows(p, v, self.run_id, self.config.compare, config=self.config) for p, v in settled])
        batch["pairs"] = pair_rows(batch, generator="external")
        mark = preparer(self.quality)

        def prepare(con, rows: dict) -> None:
            mark(con, rows)
            queries.beat_in(con, self.run_id, datetime.now(UTC))

        self._store(batch, prepare=prepare)

    def finish(self) -> None:
        self.warehouse.finish_run(self.run_id, "finished")


def _short(outcome) -> str:
    if outcome is None:
        return ""
    if outcome.kind == "returned":
        return f"returned {(outcome.value or '')[:40]}"
    if outcome.kind == "raised":
        return f"raised {outcome.type}: {(outcome.message or '')[:30]}"
    return f"{outcome.kind} {outcome.limit or outcome.signal or outcome.reason or ''}".strip()


@sandbox_app.command("bench")
def sandbox_bench(
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    executions: Annotated[int, typer.Option(help="executions timed through the pool")] = 4000,
    baseline_runs: Annotated[int | None, typer.Option(help="baseline executions")] = None,
) -> None:
    """Executions per second through the pool, beside a baseline measured in the same run."""
    from sinq.sandbox.bench import run_bench

    cfg = _sandbox_config(config, backend)
    with _open(cfg) as pool:
        result = run_bench(pool, executions, baseline_runs)
    _figures(result, f"sandbox bench ({result['backend']})", json_out)


@sandbox_app.command("selftest")
def sandbox_selftest(backend: BackendOpt = None, json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Run the hostile suite; exit 1 unless every case is contained."""
    from sinq.sandbox.hostile import run_selftest

    cfg = _sandbox_config(config, backend)
    with _open(cfg) as pool:
        result = run_selftest(pool)
    if json_out:
        print(json.dumps(result))
    else:
        out.print(f"{result['contained']}/{result['cases']} hostile cases contained")
        for failure in result["failures"]:
            out.print(f"[red]FAIL[/red] {failure['case']}: {failure['why']}")
    if result["failures"]:
        raise typer.Exit(1)


@sandbox_app.command("build-image")
def sandbox_build_image(
    offline: Annotated[bool, typer.Option("--offline", help="build from Debian packages, no registry")] = False,
    tag: Annotated[str | None, typer.Option(help="image tag")] = None,
    config: ConfigOpt = None,
) -> None:
    """Build the Docker sandbox image (Dockerfile, or offline from Debian packages)."""
    from sinq.sandbox.docker_backend import docker_client
    from sinq.sandbox.image import build_from_dockerfile, build_offline

    cfg = _sandbox_config(config, "docker")
    client = docker_client(cfg)  # SandboxUnavailable, ImageBuildError: exit 3
    name = tag or cfg.docker.image
    image_id = (build_offline(client, name, log=err.print) if offline
                else build_from_dockerfile(client, name, log=err.print))
    out.print(f"built {name} {image_id}")


@sandbox_app.command("info")
def sandbox_info(backend: BackendOpt = None, config: ConfigOpt = None) -> None:
    """Show what a worker reports about its isolation."""
    cfg = _sandbox_config(config, backend)
    with _open(cfg) as pool:
        print(json.dumps(pool.info(), indent=2))


def _load_problems(source: str, limit: int | None) -> list:
    """The source's problems (SourceError, exit 2, says why not)."""
    from sinq.sources.loaders import load

    return load(source, limit=limit)


def _figures(result: dict, title: str, json_out: bool) -> None:
    """A flat result as one JSON object, or as a two-column table for people."""
    if json_out:
        print(json.dumps(result))
        return
    table = Table("figure", "value", title=escape(title))
    for key, value in result.items():  # values may quote settings such as [[eval.gate.suites]]: never rich markup
        table.add_row(escape(key), escape(str(value)))
    out.print(table)


@sources_app.command("list")
def sources_list() -> None:
    """The kinds of source sinq loads."""
    from sinq.sources.loaders import SOURCES_HELP

    table = Table("source", "what")
    for spec, what in SOURCES_HELP.items():
        table.add_row(spec, what)
    out.print(table)


@sources_app.command("validate")
def sources_validate(
    source: Annotated[str, typer.Option("--source", help="humaneval | mbpp:PATH | hf:NAME[:SPLIT] | file:PATH")],
    limit: Annotated[int | None, typer.Option(help="at most this many problems")] = None,
    json_out: JsonOpt = False,
    backend: BackendOpt = None,
    config: ConfigOpt = None,
    show: Annotated[bool, typer.Option("--show", help="list every invalid problem")] = False,
) -> None:
    """Load problems and keep those whose reference solution passes its own tests in the sandbox."""
    from sinq.tasks.validation import summary, validate

    cfg = _sandbox_config(config, backend)
    problems = _load_problems(source, limit)
    with _open(cfg) as pool:
        validate(problems, pool)
    result = summary(problems)
    if json_out:
        print(json.dumps(result))
        return
    out.print(f"{source}: {result['loaded']} loaded, {result['valid']} valid, {result['invalid']} invalid")
    for reason, count in result["reasons"].items():
        out.print(f"  {reason}: {count}")
    if show:
        for problem in problems:
            if problem.reason:
                out.print(f"  {problem.source_id}: {problem.reason}")


@agents_app.command("baseline")
def agents_baseline(
    source: Annotated[str, typer.Option("--source", help="as in `sinq sources validate`")] = "humaneval",
    limit: Annotated[int | None, typer.Option(help="at most this many problems")] = None,
    n: Annotated[int | None, typer.Option(help="pairs asked per problem [agents] pairs_per_problem")] = None,
    difficulty: Annotated[int | None, typer.Option(help="target difficulty 0-10 [agents] target_difficulty")] = None,
    answers: Annotated[int | None, typer.Option(help="evaluator answers per pair [agents] answers")] = None,
    budget: Annotated[int | None, typer.Option(help="inputs tried per mutant [agents.baseline] search_budget")] = None,
    json_out: JsonOpt = False,
    backend: BackendOpt = None,
    config: ConfigOpt = None,
) -> None:
    """One baseline round (mutation generator + fuzzing evaluator) and its yield: problems with >= 1 verified pair."""
    from sinq.tasks.baseline_round import baseline_round
    from sinq.tasks.validation import validate

    cfg = _sandbox_config(config, backend)
    agents = load_settings(config).agents
    baseline = agents.baseline.model_copy(update={"search_budget": budget} if budget else {})
    n = n or agents.pairs_per_problem
    difficulty = agents.target_difficulty if difficulty is None else difficulty
    answers = answers or agents.answers
    problems = _load_problems(source, limit)
    with _open(cfg) as pool:
        validate(problems, pool)
        result = baseline_round(problems, pool, n, difficulty, answers, baseline)
    _figures(result, f"baseline round on {source}", json_out)


@app.command()
def parse(
    role: Annotated[str, typer.Argument(help="alice | bob")],
    file: Annotated[Path, typer.Argument(help='JSONL: {"messages": [...]} transcripts or {"text": ...}',
                                         exists=True, dir_okay=False)],
    json_out: JsonOpt = False,
) -> None:
    """Parse responses made elsewhere: one JSON line per input line {line, program, input, equivalent, reason}."""
    from sinq.game.transcripts import parse_line

    if role not in ("alice", "bob"):
        raise UsageError(f"unknown role {role!r} (alice | bob)")
    rows = []
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                rows.append(parse_line(role, number, raw))
    if json_out:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    table = Table("line", "program", "input", "equivalent", "reason", title=f"{role}: {file}")
    for row in rows:
        table.add_row(str(row["line"]), "yes" if row["program"] else "", (row["input"] or "")[:40],
                      "" if row["equivalent"] is None else str(row["equivalent"]), row["reason"] or "")
    out.print(table)
    counts = Counter(row["reason"] or "ok" for row in rows)
    out.print(", ".join(f"{reason}: {n}" for reason, n in counts.most_common()))


@app.command(context_settings={"ignore_unknown_options": True})  # a query may begin with "-- a comment"
def sql(
    query: Annotated[str, typer.Argument(help="a SELECT statement")],
    db: DbOpt = None,
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json (csv and json stream every row)")
                   ] = "table",
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="rows the table view shows")] = 1000,
    allow_files: Annotated[bool, typer.Option("--allow-files", help="let the query read files (read_csv, glob, ...)")
                           ] = False,
) -> None:
    """Query the warehouse, read-only, on a snapshot (a query of any length never holds up a run's writes); file
    access is off unless --allow-files; extensions are never installed or loaded, and only SELECT (and EXPLAIN of a
    SELECT) runs, --allow-files or not."""
    from sinq.warehouse.user_sql import user_query

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"unknown format {fmt!r}", hint="--format table | csv | json")
    with user_query(_warehouse(db, config), query, allow_files=allow_files) as (columns, batches):
        if fmt in ("csv", "json"):
            try:
                _write_rows(fmt, columns, batches)
            except BrokenPipeError:  # `| head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        else:
            table, shown, left_out = Table(*map(escape, columns)), 0, 0  # cells are data, never rich markup
            for rows in batches:
                for row in rows[:max(0, max_rows - shown)]:
                    table.add_row(*["" if v is None else escape(str(v)) for v in row])
                taken = min(len(rows), max(0, max_rows - shown))
                shown += taken
                left_out += len(rows) - taken
            out.print(table)
            if left_out:
                out.print(f"{shown} rows shown, {left_out} more left out (--max-rows, or --format csv|json for all)")


def _write_rows(fmt: str, columns: list[str], batches) -> None:
    """CSV or a JSON array, written batch by batch as the query produces them."""
    import csv

    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for rows in batches:
            writer.writerows(rows)
        return
    first = True
    sys.stdout.write("[")
    for rows in batches:
        for row in rows:
            sys.stdout.write(("" if first else ",\n") + json.dumps(dict(zip(columns, row, strict=True)), default=str))
            first = False
    sys.stdout.write("]\n")
    sys.stdout.flush()


@db_app.command("info")
def db_info(db: DbOpt = None, config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Path, schema version and row counts (after an integrity check of the file)."""
    warehouse = _warehouse(db, config)
    crashed = _mark_dead_runs(warehouse)
    crashed_jobs = _mark_dead_jobs(warehouse)
    info = warehouse.info()
    info["marked_crashed"] = crashed
    info["marked_crashed_jobs"] = crashed_jobs
    if json_out:
        print(json.dumps(info))
        return
    if crashed:
        err.print(f"marked {len(crashed)} dead run(s) crashed: {', '.join(crashed)}")
    if crashed_jobs:
        err.print(f"marked {len(crashed_jobs)} dead training job(s) crashed: {', '.join(crashed_jobs)}")
    table = Table("table", "rows", title=f"{info['path']} (schema v{info['schema_version']})")
    for name, count in info["tables"].items():
        table.add_row(name, str(count))
    out.print(table)


@db_app.command("bench")
def db_bench(
    json_out: JsonOpt = False,
    rows: Annotated[int, typer.Option(help="execution rows ingested")] = 200_000,
    pairs: Annotated[int, typer.Option(help="synthetic pairs behind the per-round view")] = 1_000_000,
    check_rows: Annotated[int, typer.Option(help="executions added before timing the integrity check a process "
                                            "runs before its first write (0: skip)")] = 2_000_000,
) -> None:
    """Bulk ingestion of execution rows, the per-round statistics view over many pairs, and the integrity check's
    cold cost on a grown warehouse."""
    from sinq.warehouse.bench import run_bench

    _figures(run_bench(rows, pairs, check_rows=check_rows), "warehouse bench", json_out)


@app.command("export")
def export_cmd(
    out_dir: Annotated[Path, typer.Argument(help="output folder")],
    fmt: Annotated[str, typer.Option("--format", help="parquet | jsonl")] = "parquet",
    run: Annotated[str | None, typer.Option("--run", help="only this run")] = None,
    include_flagged: Annotated[bool, typer.Option("--include-flagged", help="keep pairs with degenerate flags")
                               ] = False,
    force: Annotated[bool, typer.Option("--force", help="replace a previous sinq export in that folder")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export verified pairs (with a dataset card and its statistics) in a form `datasets.load_dataset` loads;
    flagged pairs are left out unless --include-flagged. Written atomically; a folder sinq did not write is refused."""
    from sinq.warehouse.export import export

    summary = export(_warehouse(db, config), out_dir, fmt, run, include_flagged=include_flagged, force=force)
    left_out = f", {summary['flagged_left_out']} flagged left out" if summary["flagged_left_out"] else ""
    out.print(f"exported {summary['pairs']} pairs to {summary['file']}{left_out} (card: {out_dir / 'README.md'})")


app.command("audit")(audit_cli.audit)
eval_cli.app.command("freeze")(eval_game_cli.freeze)
eval_cli.app.command("sets")(eval_game_cli.sets)
eval_cli.app.command("game")(eval_game_cli.game)
eval_cli.app.command("classify")(eval_classify_cli.classify)
eval_cli.app.command("equivalence")(eval_equivalence_cli.equivalence)
app.add_typer(eval_cli.app, name="eval")


SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="override any setting: `--set run.slot_wait_s=60 --set sandbox.limits.timeout_s=2` "
                  "(TOML values; repeatable)")]


def _overridden(data: dict, sets: list[str]) -> dict:
    """Apply ``section.key=value`` overrides; values are TOML (``2``, ``true``, ``"x"``), bare words are strings.
    Unknown keys fail in validation with the closest known key, like a config file's."""
    import tomllib

    for item in sets:
        path, sep, raw = item.partition("=")
        keys = [k.strip() for k in path.split(".")]
        if not sep or not all(keys):
            raise SettingsError(f"--set wants section.key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise SettingsError(f"--set {path}: {key!r} is a value, not a section")
            node = child
        node[keys[-1]] = value
    return data


def _run_settings(config: Path | None, source: str | None, limit: int | None, agents: str | None,
                  backend: str | None, db: Path | None, round_: int | None, task_runner: str | None,
                  sets: list[str] | None = None, pass_id: str | None = None):
    """Settings for one run: the config file (or embedded defaults), then ``--set`` overrides, then the named flags
    on top."""
    from pydantic import ValidationError

    try:
        settings = load_settings(config)
        if sets:
            settings = type(settings).model_validate(_overridden(settings.model_dump(), sets))
        run = settings.run.model_dump()
        run.update({k: v for k, v in {"source": source, "limit": limit, "round": round_,
                                      "task_runner": task_runner, "pass_id": pass_id}.items() if v is not None})
        data = settings.model_dump()
        data["run"] = run
        if backend is not None:
            data["sandbox"]["backend"] = backend
        if db is not None:
            data["warehouse"]["path"] = db
        if agents is not None:
            if agents not in ("baseline", "llm"):
                raise SettingsError(f"--agents must be baseline or llm, got {agents!r}")
            for role in ("generator", "evaluator"):
                data["agents"][role]["kind"] = agents
        return type(settings).model_validate(data)
    except ValidationError as exc:
        raise settings_error(exc, "settings (config and flags)") from exc


def _preflight(settings) -> None:
    """What `sinq run` needs, checked before a flow run exists: a bad source, database path or sandbox is one line
    here instead of a failed run in the UI, a new empty database and a Prefect traceback."""
    _check_source(settings.run.source, settings)
    _check_db(settings.warehouse.path, settings.warehouse.lock_timeout_s)
    _check_promoted(settings)
    _open(settings.sandbox).close()  # docker: engine reachable, image current; local: bwrap when required


def _check_promoted(settings) -> None:
    """A role that loads its promoted adapter gets one trained on its configured model (AdapterBaseMismatch: one
    line, exit 2, before a flow run exists)."""
    from sinq.agents.backends import resolve_adapter
    from sinq.warehouse.store import Warehouse

    path = settings.warehouse.path
    if not path.exists() or path.stat().st_size == 0:
        return
    warehouse = Warehouse(path, settings.warehouse.lock_timeout_s)
    for role in ("generator", "evaluator"):
        agent = getattr(settings.agents, role)
        if agent.kind == "llm":
            resolve_adapter(agent, role, warehouse)


def _check_source(spec: str, settings) -> None:
    """The spec names a source that loads (one problem is read; an hf: dataset only needs `datasets`)."""
    import importlib.util

    from sinq.sources.loaders import SourceError, load

    kind, _, rest = spec.partition(":")
    if kind == "hf" and rest:
        if importlib.util.find_spec("datasets") is None:
            raise SourceError("the datasets package is needed for hf: sources", hint="pip install datasets")
        return
    try:
        load(spec, limit=1, splits=settings.sources.split)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"cannot load source {spec!r}: {type(exc).__name__}: {exc}") from exc


def _check_db(path: Path, lock_timeout_s: float) -> None:
    """The database can be created or opened for writing, and an existing file is a DuckDB file of a schema this
    sinq understands (and undamaged, where the warehouse can check that). Nothing is created here."""
    import duckdb

    from sinq.warehouse.store import Warehouse, WarehouseError, check_location

    check_location(path, "create the database")
    if not path.exists() or path.stat().st_size == 0:
        return
    warehouse = Warehouse(path, lock_timeout_s)
    try:
        with warehouse.reading():  # not DuckDB, or a newer schema: WarehouseError
            pass
        check = getattr(warehouse, "check", None)  # the integrity check, where the warehouse has one
        if check is not None:
            check()
    except duckdb.Error as exc:
        raise WarehouseError(f"{path} is not a usable DuckDB database ({type(exc).__name__})",
                             hint="restore it from an export or move it away") from exc


def _audit_figure(audit: dict | None) -> dict | None:
    """The nightly audit in the run's figures: what was re-checked and what reproduced."""
    if not audit:
        return None
    return {k: audit[k] for k in ("checked", "reproduced", "not_reproduced", "by_reason") if k in audit}


@app.command()
def run(
    source: Annotated[str | None, typer.Option("--source", help="problem source, as in `sinq sources validate`")
                      ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="at most this many problems")] = None,
    agents: Annotated[str | None, typer.Option("--agents", help="baseline | llm (both roles)")] = None,
    backend: BackendOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    round_: Annotated[int | None, typer.Option("--round", help="self-play round of the samples")] = None,
    task_runner: Annotated[str | None, typer.Option("--task-runner", help="threads | dask")] = None,
    pass_id: Annotated[str | None, typer.Option("--pass", help="the sampling pass (default: today's date); a rerun "
                                                "of one pass adds nothing, a new pass asks for new samples")] = None,
    sets: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one nightly generation now, visible in the Prefect UI (a local server is started if none answers)."""
    import logging
    import os

    import httpx

    from sinq.flows import server

    settings = _run_settings(config, source, limit, agents, backend, db, round_, task_runner, sets, pass_id)
    _preflight(settings)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    api = server.ensure_api()
    if json_out:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from sinq.flows.nightly import for_settings, progress_hooks

    _console_errors_one_line()

    err.print(f"[dim]Prefect API {api} · warehouse {settings.warehouse.path} · source {settings.run.source}[/dim]")
    bars = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, disable=json_out)
    ids: dict[str, int] = {}

    def hook(stage: str, done: int, total: int) -> None:
        if stage not in ids:
            ids[stage] = bars.add_task(stage, total=total)
        bars.update(ids[stage], completed=done, total=total)

    progress_hooks.append(hook)
    logging.getLogger("prefect").setLevel(logging.WARNING if json_out else logging.INFO)
    try:
        with bars:
            state = for_settings(settings)(settings.model_dump(mode="json"), return_state=True)
    except (httpx.HTTPError, RuntimeError) as exc:  # the API vanished or fails: the control plane, not the data
        cause = exc if isinstance(exc, httpx.HTTPError) else exc.__cause__
        if isinstance(exc, SinqError) or not isinstance(cause, httpx.HTTPError):
            raise
        raise server.PrefectUnavailable(f"the Prefect API at {api} failed: {type(cause).__name__}: {cause}",
                                        hint="sinq server status; what was stored stays stored") from exc
    finally:
        progress_hooks.remove(hook)
    run_id = str(state.state_details.flow_run_id)
    ui = f"{server.ui_url(api)}/runs/flow-run/{run_id}"
    if not state.is_completed():
        raise SinqError(f"run {run_id} {state.name}: {state.message}", hint=f"see {ui}", exit_code=1)
    summary = state.result()
    result = {"run_id": summary["run_id"], "problems": summary["problems"], "samples": summary["samples"],
              "verified_pairs": summary["verified_pairs"], "evaluated_pairs": summary["evaluated_pairs"],
              "verification_rate": summary["verification_rate"],
              "evaluator_success_rate": summary["evaluator_success_rate"],
              "false_alarm_rate": summary.get("false_alarm_rate"), "miss_rate": summary.get("miss_rate"),
              "equivalent_pairs": summary.get("equivalent_pairs", 0),
              "difficulty_histogram": summary["difficulty_histogram"],
              "round_verified_pairs": summary["round_verified_pairs"], "pass_id": summary.get("pass_id"),
              "exhausted_problems": summary.get("exhausted_problems", 0),
              "duplicates": summary.get("duplicates"), "flagged": summary.get("flagged"),
              "pairs_per_cpu_minute": summary.get("pairs_per_cpu_minute"), "cpu_s": summary.get("cpu_s"),
              "sandbox_shares": (summary.get("sandbox") or {}).get("shares"), "sandbox": summary.get("sandbox"),
              "search": summary.get("search"), "equivalence": summary.get("equivalence"),
              "equivalence_drop_share": summary.get("equivalence_drop_share"),
              "audit": _audit_figure(summary.get("audit")), "db": str(settings.warehouse.path),
              "snapshot": (summary["snapshot"] or {}).get("path"), "ui": ui, "timings": summary["timings"]}
    if json_out:
        print(json.dumps(result))
        return
    hidden = ("ui", "timings", "sandbox", "equivalence")
    _figures({k: v for k, v in result.items() if k not in hidden}, "nightly generation", False)
    out.print(f"Prefect UI: [link={ui}]{ui}[/link]")
    out.print(f"Query: sinq sql \"SELECT difficulty, count(*) FROM verified_pairs WHERE run_id = '{run_id}' "
              f"GROUP BY 1 ORDER BY 1\" --db {settings.warehouse.path}")


@app.command()
def deploy(
    config: ConfigOpt = None,
    name: Annotated[str, typer.Option(help="deployment name")] = "nightly",
    sets: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register the deployments and their work pools: the nightly one (cron + timezone from [run], never
    overlapping) on the CPU pool; the weekly fine-tune (with the gate), the gate and evaluate on the GPU pool."""
    import os

    from sinq.flows import server

    settings = _run_settings(config, None, None, None, None, None, None, None, sets)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    api = server.ensure_api(start_if_missing=False)
    from sinq.flows.deploy import deploy_nightly

    result = deploy_nightly(settings, name)
    if json_out:
        print(json.dumps(result))
        return
    _figures(result, f"deployed to {api}", False)
    out.print(f"Start a worker: sinq worker start --pool {result['work_pool']} (fine-tune/gate/evaluate: --pool "
              f"{result['gpu_pool']} on the GPU host)")


worker_app = typer.Typer(help="Prefect workers that run the deployments.", no_args_is_help=True)
app.add_typer(worker_app, name="worker")


@worker_app.command("start")
def worker_start(
    pool: Annotated[str, typer.Option(help="work pool (sinq-cpu for generation, sinq-gpu for fine-tuning)")
                    ] = "sinq-cpu",
    run_once: Annotated[bool, typer.Option("--run-once", help="poll once, run what is due, exit")] = False,
) -> None:
    """Run a process worker for a pool (in the foreground; Ctrl-C stops it)."""
    import os
    import subprocess

    from sinq.flows import server

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server.ensure_api(start_if_missing=False)
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect) if prefect.exists() else "prefect", "worker", "start", "--pool", pool, "--type",
               "process"] + (["--run-once"] if run_once else [])
    raise typer.Exit(subprocess.call(command))


pipeline_app = typer.Typer(help="The nightly pipeline: benchmark.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
pipeline_app.command("nights")(nights_cli.nights)


@pipeline_app.command("bench")
def pipeline_bench(
    problems: Annotated[int, typer.Option(help="problems (HumanEval repeated under distinct ids)")] = 1000,
    samples: Annotated[int, typer.Option(help="samples asked per problem")] = 10,
    batch_size: Annotated[int, typer.Option(help="problems per task")] = 50,
    backend: BackendOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A nightly run with baseline agents: wall time, orchestration time (when no stage worked) and its share."""
    import logging
    import os

    from sinq.flows import server
    from sinq.flows.bench import pipeline_bench as bench

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server.ensure_api()  # before Prefect's settings are first read: else the flow gets a temporary server
    _console_errors_one_line()
    logging.getLogger("prefect").setLevel(logging.WARNING)
    result = bench(problems, samples, batch_size, _sandbox_config(config, backend))
    _figures(result, f"pipeline bench: {problems} problems x {samples} samples", json_out)


train_app = typer.Typer(help="Training sets and fine-tuning jobs (TRL).", no_args_is_help=True)
app.add_typer(train_app, name="train")
models_app = typer.Typer(help="Adapters: list, promote.", no_args_is_help=True)
app.add_typer(models_app, name="models")
RoleOpt = Annotated[str, typer.Option("--role", help="generator | evaluator")]


def _settings_warehouse(config: Path | None, db: Path | None):
    from sinq.warehouse.store import Warehouse

    settings = load_settings(config)
    return settings, Warehouse.from_config(settings.warehouse, db)


@train_app.command("build")
def train_build(
    kind: Annotated[str, typer.Argument(help="sft | dpo | grpo")],
    role: RoleOpt = "generator",
    rounds: Annotated[str | None, typer.Option(help="comma-separated rounds (default: all)")] = None,
    include_duplicates: Annotated[bool, typer.Option(help="keep pairs marked as duplicates")] = False,
    include_flagged: Annotated[bool, typer.Option(help="keep variants flagged degenerate")] = False,
    include_contaminated: Annotated[bool, typer.Option(help="skip decontamination against evaluation items")] = False,
    equivalent_share: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="evaluator sets: at most this share from equivalent pairs (default: [training.build])")
    ] = None,
    hard_only: Annotated[bool, typer.Option("--hard-only", help="only pairs a surface-only classifier misclassifies "
                                            "(the hard split of `sinq train bench-leakage`)")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Build a training set from the warehouse (Parquet + dataset card) and register it. Held-out problems never
    enter; duplicates, flagged and contaminated pairs only when asked."""
    from sinq.training.datasets import snapshot
    from sinq.training.leakage import hard_snapshot

    settings, warehouse = _settings_warehouse(config, db)
    build = settings.training.build
    if rounds:
        build = build.model_copy(update={"rounds": [int(r) for r in rounds.split(",")]})
    build = build.model_copy(update={"include_duplicates": build.include_duplicates or include_duplicates,
                                     "include_flagged": build.include_flagged or include_flagged})
    if equivalent_share is not None:
        build = build.model_copy(update={"equivalent_share": equivalent_share})
    decontamination = settings.training.decontamination
    if include_contaminated:
        decontamination = decontamination.model_copy(update={"enabled": False})
    try:
        result = (hard_snapshot if hard_only else snapshot)(warehouse, kind, role, build, decontamination,
                                                            settings.sources.split)
    except ValueError as exc:
        if isinstance(exc, SinqError):
            raise
        raise UsageError(str(exc)) from exc
    _figures(result, f"{kind} set for the {role}", json_out)


def _mark_dead_jobs(warehouse) -> list[str]:
    """Training jobs left ``running`` by a killed process become ``crashed`` and their unfinished adapter folders
    go (training/jobs.py); the flow runs they belonged to become Crashed when a Prefect API is configured."""
    from sinq.tasks.liveness import crash_in_prefect, reap_dead_jobs

    dead = reap_dead_jobs(warehouse)
    runs = [d["run_id"] for d in dead if d["run_id"]]
    if runs:
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():  # never an ephemeral server just for this
            crash_in_prefect(runs)
    return [d["job_id"] for d in dead]


@contextlib.contextmanager
def _training_stdout() -> Iterator[None]:
    """TRL and transformers print their log dicts (and tqdm.write lines) on stdout, native libraries (tokenizers'
    trainer) write to file descriptor 1: while training both are stderr, so stdout holds only the command's own
    output (one JSON document with --json)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 to move: the Python-level redirect alone
        saved = None
    if saved is not None:
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _train(kind: str, role: str, base: str, dataset: str, lora: bool, max_steps: int | None, db: Path | None,
           config: Path | None, json_out: bool) -> None:
    from sinq.training.train import train

    settings, warehouse = _settings_warehouse(config, db)
    train_config = settings.training.train.model_copy(
        update={"lora": lora, **({"max_steps": max_steps} if max_steps else {})})
    sandbox = None
    try:
        if kind == "grpo":
            sandbox = _open(settings.sandbox)
            sandbox.start()
        with _training_stdout():
            result = train(warehouse, kind, role, base, dataset, train_config, sandbox)
    except (KeyError, ValueError) as exc:
        if isinstance(exc, SinqError):
            raise
        raise UsageError(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)) from exc
    finally:
        if sandbox is not None:
            sandbox.close()
    _figures({k: v for k, v in result.items() if k != "metrics"} | result["metrics"], f"{kind} {role}", json_out)


def _train_command(kind: str):
    def command(
        role: RoleOpt = "generator",
        base: Annotated[str, typer.Option("--base", help="base model: a local path")] = "",
        dataset: Annotated[str, typer.Option("--dataset", help="training set snapshot id (sinq train build)")] = "",
        lora: Annotated[bool, typer.Option("--lora/--no-lora", help="LoRA adapter (default) or a full fine-tune")
                        ] = True,
        max_steps: Annotated[int | None, typer.Option(help="stop after this many steps")] = None,
        db: DbOpt = None,
        config: ConfigOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        if not base or not dataset:
            raise UsageError("--base and --dataset are required")
        _train(kind, role, base, dataset, lora, max_steps, db, config, json_out)

    command.__doc__ = f"{kind.upper()} with TRL; registers the adapter (promote it with `sinq models promote`)."
    return command


for _kind in ("sft", "dpo", "grpo"):
    train_app.command(_kind)(_train_command(_kind))


def _check_training(settings, roles: list[str], kind: str, base: str | None, stored: bool) -> None:
    """What a training flow needs, checked before its flow run exists (as `sinq run` does): a bad kind, a database
    that cannot be written (or, when ``stored``, holds nothing yet: exit 4) and a base model that is not a model
    folder are one line here instead of a Failed flow run in the UI."""
    from sinq.training.train import check_base
    from sinq.warehouse.store import WarehouseError

    if kind not in ("sft", "dpo", "grpo"):
        raise UsageError(f"unknown training kind {kind!r}", hint="--kind sft | dpo | grpo")
    unknown = sorted(set(roles) - {"generator", "evaluator"})
    if unknown:
        raise UsageError(f"unknown role(s) {', '.join(unknown)}", hint="--role generator | evaluator")
    path = settings.warehouse.path
    _check_db(path, settings.warehouse.lock_timeout_s)
    if stored and (not path.exists() or path.stat().st_size == 0):
        raise WarehouseError(f"no warehouse at {path}: nothing is stored to train on",
                             hint="fill it with `sinq run` first, or point --db (or [warehouse] path, SINQ_DB) at it")
    for role in roles:
        model = base or getattr(settings.agents, role).model or settings.training.base_model
        if not model:
            raise UsageError(f"no base model for the {role}",
                             hint=f"--base PATH, or set [agents.{role}] model or [training] base_model")
        check_base(model)


@train_app.command("finetune")
def train_finetune(
    role: RoleOpt = "evaluator",
    kind: Annotated[str, typer.Option("--kind", help="sft | dpo | grpo")] = "sft",
    base: Annotated[str | None, typer.Option("--base", help="base model (default: the role's model)")] = None,
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="promote the new adapter if it passes "
                                          "the gate ([eval.gate]; a rejected one is kept, marked)")] = True,
    db: DbOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One command from stored data to a promoted adapter: the `finetune` flow (build, train, gate, promote: only an
    adapter that passes `[eval.gate]` against the incumbent is promoted)."""
    import os

    from sinq.flows import server

    settings = _run_settings(config, None, None, None, None, db, None, None, sets)
    _check_training(settings, [role], kind, base, stored=True)
    if kind == "grpo" or settings.eval.gate.enabled:
        _open(settings.sandbox).close()  # GRPO's reward and the gate's suites run in the sandbox
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server.ensure_api()
    from sinq.flows.finetuning import finetune

    _console_errors_one_line()

    with _training_stdout():
        result = finetune(settings.model_dump(mode="json"), role=role, kind=kind, base=base, promote=promote)
    if json_out:
        print(json.dumps(result, default=str))
        return
    _figures({k: v for k, v in result.items() if k not in ("snapshot", "metrics")}, f"finetune {role}", False)


@train_app.command("self-play")
def train_self_play(
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="rounds to play")] = 2,
    role: Annotated[list[str] | None, typer.Option("--role", help="the roles trained each round (repeatable; "
                                                   "default both): --role generator plays generator rounds "
                                                   "against a frozen evaluator")] = None,
    kind: Annotated[str, typer.Option("--kind", help="sft | dpo | grpo")] = "sft",
    first_round: Annotated[int | None, typer.Option("--round", help="the first round's number (default [run] "
                                                    "round)")] = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The `self-play` flow: per round, generation with the promoted adapters, then build, train, gate and promote
    the roles; curves and gate figures per round in the UI."""
    import os

    from sinq.flows import server

    roles = role or ["generator", "evaluator"]
    unknown = sorted(set(roles) - {"generator", "evaluator"})
    if unknown:
        raise SettingsError(f"unknown role(s) {', '.join(unknown)} (generator | evaluator)")
    settings = _run_settings(config, None, None, None, None, db, first_round, None, sets)
    _check_training(settings, roles, kind, None, stored=False)
    _preflight(settings)  # each round is a nightly generation first: its source, database and sandbox
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server.ensure_api()
    from sinq.flows.finetuning import self_play

    _console_errors_one_line()
    with _training_stdout():
        result = self_play(settings.model_dump(mode="json"), rounds=rounds, kind=kind, roles=roles)
    if json_out:
        print(json.dumps(result, default=str))
        return
    for curve in result["rounds"]:
        _figures({k: v for k, v in curve.items() if k in ("round", "verified_pairs", "generator_validity",
                                                            "evaluator_success_rate", "share_difficulty_10",
                                                            "trained")}, f"round {curve['round']}", False)


@train_app.command("bench-thresholds")
def train_bench_thresholds(
    limit: Annotated[int | None, typer.Option(help="HumanEval problems (default: all 164)")] = None,
    max_mutants: Annotated[int | None, typer.Option(help="mutants per program (default: all)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The figures behind the near-duplicate and decontamination thresholds, on HumanEval and its mutants."""
    from sinq.training.thresholds_bench import thresholds_bench

    result = thresholds_bench(limit=limit, max_mutants=max_mutants)
    if json_out:
        print(json.dumps(result))
        return
    flat = {"problems": result["problems"], **{f"near.{k}": v for k, v in result["near_duplicates"].items()},
            **{f"decontam.{k}": v for k, v in result["decontamination"].items() if k != "table"},
            **{f"decontam.removed@{r['threshold']}": r["train_material_removed_share"]
               for r in result["decontamination"]["table"]},
            **{f"decontam.caught@{r['threshold']}": r["held_out_mutants_caught_share"]
               for r in result["decontamination"]["table"]}, "seconds": result["seconds"]}
    _figures(flat, "hygiene thresholds", False)


@train_app.command("bench")
def train_bench_command(
    model: Annotated[str | None, typer.Option(help="model path (default: a small random model made now)")] = None,
    examples: Annotated[int, typer.Option(help="SFT examples")] = 256,
    max_steps: Annotated[int, typer.Option(help="optimizer steps per setting")] = 8,
    batch_size: Annotated[int, typer.Option(help="rows per step")] = 4,
    max_length: Annotated[int, typer.Option(help="tokens per row")] = 1024,
    json_out: JsonOpt = False,
) -> None:
    """SFT tokens/s: TRL's defaults against our tuned settings (packing, padding-free, LoRA), same data and model."""
    from sinq.training.bench import train_bench

    with _training_stdout():
        result = train_bench(model, examples, max_steps, batch_size, max_length)
    if json_out:
        print(json.dumps(result))
        return
    _figures({k: v for k, v in result.items() if k != "details"}, "SFT throughput", False)


train_app.command("bench-leakage")(leakage_cli.bench_leakage)


class AdapterRejected(SinqError):
    """No passed gate decision for this adapter (never gated, or rejected): promoting it needs --force and a
    non-blank --reason (stored as a forced decision: who, when, why)."""

    exit_code = 2


def _gate_cell(gate: dict | None) -> str:
    """An adapter's latest gate decision in one cell: verdict, then each measured suite's delta (and p)."""
    if not gate:
        return ""
    verdict = "forced" if gate["forced"] else "passed" if gate["passed"] else "rejected"
    parts = []
    for label, f in (gate["figures"] or {}).get("suites", {}).items():
        if f.get("skipped"):
            continue
        p = f" p={f['p_value']:.3g}" if f.get("p_value") is not None else ""
        parts.append(f"{label} {f['delta']['value']:+.3f}{p}")
    return f"{verdict}: {', '.join(parts)}" if parts else verdict


@models_app.command("list")
def models_list(role: Annotated[str | None, typer.Option("--role", help="only this role (generator | evaluator)")
                                ] = None, db: DbOpt = None,
                config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Registered adapters with their status (registered | promoted | rejected) and latest gate figures; the one
    each role uses is marked."""
    from sinq.warehouse.adapters import list_adapters

    _, warehouse = _settings_warehouse(config, db)
    crashed_jobs = _mark_dead_jobs(warehouse)
    if crashed_jobs:
        err.print(f"marked {len(crashed_jobs)} dead training job(s) crashed: {', '.join(crashed_jobs)}")
    rows = list_adapters(warehouse, role)
    if json_out:
        print(json.dumps(rows, default=str))
        return
    table = Table("adapter", "role", "kind", "base", "snapshot", "status", "in use", "gate (delta vs incumbent)",
                  title=f"adapters in {warehouse.path}")
    for row in rows:
        table.add_row(row["adapter_id"], row["role"], str(row["kind"]), str(row["base_model"]),
                      str(row["snapshot_id"]), row["status"], "yes" if row["promoted"] else "", _gate_cell(row["gate"]))
    out.print(table)


@models_app.command("promote")
def models_promote(role: Annotated[str, typer.Argument(help="generator | evaluator")],
                   adapter: Annotated[str, typer.Argument(help="adapter id (sinq models list)")],
                   force: Annotated[bool, typer.Option("--force", help="promote an adapter without a passed gate "
                                                       "decision against the role's current adapter (needs "
                                                       "--reason; stored as a forced decision)")] = False,
                   reason: Annotated[str | None, typer.Option("--reason", help="why the gate is overridden "
                                                              "(stored with the forced decision, who and when)")
                                     ] = None,
                   db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Choose the adapter a role uses next (agents with adapter = "promoted" load it): only one whose latest gate
    decision passed against the adapter the role uses now; any other only with --force --reason TEXT."""
    from sinq.evals.gate import force_promotion
    from sinq.warehouse.adapters import adapter as adapter_row
    from sinq.warehouse.adapters import latest_measured, promote

    _, warehouse = _settings_warehouse(config, db)
    try:
        row = adapter_row(warehouse, role, adapter)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from exc
    reason = (reason or "").strip() or None
    if force and not reason:
        raise UsageError("--force needs --reason TEXT, not blank (it is stored with the forced decision)")
    if reason and not force:
        raise UsageError("--reason goes with --force (a promotion on a passed gate decision needs no reason)")
    if row["promoted"]:
        out.print(f"{role} already uses {adapter}")
        return
    if force:
        decision = force_promotion(warehouse, role, adapter, reason)
        out.print(f"forced decision {decision['decision_id']} stored ({decision['decided_by']}: {reason})")
        out.print(f"{role} now uses {adapter}")
        return
    override = f"sinq models promote {role} {adapter} --force --reason TEXT"
    evidence = latest_measured(warehouse, role, adapter)
    if evidence is None:
        raise AdapterRejected(f"{role} adapter {adapter} was never gated: nothing is promoted without a passed gate "
                              "decision", hint=f"sinq eval gate {role} {adapter} (or {override})")
    if not evidence["passed"]:
        raise AdapterRejected(f"the gate rejected {role} adapter {adapter} (decision {evidence['decision_id']}): "
                              "see sinq models list", hint=override)
    promote(warehouse, role, adapter, evidence["decision_id"])  # PromotionRefused: measured against another one
    out.print(f"{role} now uses {adapter}")


server_app = typer.Typer(help="A local Prefect server (SQLite, analytics off) for the UI.", no_args_is_help=True)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(port: Annotated[int, typer.Option(help="port")] = 4200) -> None:
    """Start it in the background (kept running after this command); prints where the UI is."""
    from sinq.flows import server

    info = server.start(port=port)
    out.print(f"Prefect server up: UI {info['ui_url']} (pid {info['pid']}); export PREFECT_API_URL={info['api_url']}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server `sinq server start` started (never one it did not start)."""
    from sinq.flows import server

    out.print("stopped" if server.stop() else "no server started by sinq is running")


@server_app.command("status")
def server_status(json_out: JsonOpt = False) -> None:
    """Whether the server sinq started answers, its API and UI addresses (on the port it was started on), its PID."""
    from sinq.flows import server

    info = server.status()
    if json_out:
        print(json.dumps(info))
        return
    _figures(info, "Prefect server", False)
    if not info["healthy"]:
        raise typer.Exit(1)


@agents_app.command("bench")
def agents_bench(
    backend: Annotated[str, typer.Option("--backend", help="LLM backend to measure: vllm-batch")] = "vllm-batch",
    model: Annotated[str | None, typer.Option(help="model path (default: a tiny random model made now)")] = None,
    python: Annotated[str | None, typer.Option(help="vLLM's interpreter (default: SINQ_VLLM_PYTHON, .vllm-env)")
                      ] = None,
    requests: Annotated[int, typer.Option(help="requests in the batch")] = 128,
    max_tokens: Annotated[int, typer.Option(help="completion tokens per request")] = 128,
    repeats: Annotated[int, typer.Option(help="raw/pipeline pairs; medians are reported")] = 1,
    vllm_args: Annotated[str | None, typer.Option(help="extra vLLM engine flags (default: CPU-friendly)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Pipeline tokens/s against the bare engine (`vllm run-batch` alone) on the same requests."""
    import shlex

    from sinq.agents.bench import bench_vllm_batch

    if backend != "vllm-batch":
        raise UsageError(f"only the vllm-batch backend has a bench (got {backend!r})")
    result = bench_vllm_batch(model, python, requests, max_tokens, repeats,  # VLLMError: exit 6
                              shlex.split(vllm_args) if vllm_args is not None else None)
    _figures(result, "vllm-batch: pipeline vs raw run-batch", json_out)


if __name__ == "__main__":
    app(prog_name="sinq")
