"""The warehouse schema: versioned, forward-only migrations and the public views (DESIGN.md §5).

Every table that records something the game did carries ``run_id`` (→ runs: config snapshot + hash, code version)
and a ``created_at``; agents, prompts, sampling and sandbox provenance sit on the rows they describe. Keys are
content hashes so that a re-stored batch is a no-op (``INSERT … ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from dataclasses import dataclass


class SchemaError(RuntimeError):
    """The database cannot be used by this version of sinq; nothing was changed."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


TABLES_V1 = """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, status VARCHAR NOT NULL, round INTEGER,
    config JSON, config_hash VARCHAR, code_version VARCHAR, tags JSON, timings JSON, error VARCHAR,
    started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP);
CREATE TABLE problems (
    problem_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, source_id VARCHAR, split VARCHAR, licence VARCHAR,
    text VARCHAR, code VARCHAR NOT NULL, tests VARCHAR, setup_code VARCHAR, entry_point VARCHAR, signature VARCHAR,
    seed_inputs JSON, validation_status VARCHAR, validation_reason VARCHAR, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE agents (
    agent_id VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, kind VARCHAR NOT NULL, backend VARCHAR, model VARCHAR,
    adapter VARCHAR, base_model VARCHAR, params JSON, created_at TIMESTAMP);
CREATE TABLE llm_requests (
    request_id VARCHAR PRIMARY KEY, agent_id VARCHAR, prompt_version VARCHAR, messages JSON, sampling JSON,
    seed BIGINT, n INTEGER, json_schema JSON, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE llm_responses (
    response_id VARCHAR PRIMARY KEY, request_id VARCHAR NOT NULL, choice_index INTEGER, text VARCHAR,
    finish_reason VARCHAR, prompt_tokens INTEGER, completion_tokens INTEGER, latency_s DOUBLE, cache_hit BOOLEAN,
    run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE programs (
    program_id VARCHAR PRIMARY KEY, code VARCHAR NOT NULL, created_at TIMESTAMP);
CREATE TABLE inputs (
    input_id VARCHAR PRIMARY KEY, literal VARCHAR NOT NULL, json JSON, created_at TIMESTAMP);
CREATE TABLE samples (
    sample_id VARCHAR PRIMARY KEY, problem_id VARCHAR, agent_id VARCHAR, response_id VARCHAR, round INTEGER,
    target_difficulty INTEGER, program_id VARCHAR, input_id VARCHAR, status VARCHAR NOT NULL, reason VARCHAR,
    detail VARCHAR, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE executions (
    execution_id VARCHAR PRIMARY KEY, verdict_id VARCHAR, side VARCHAR, program_id VARCHAR, input_id VARCHAR,
    entry_point VARCHAR, backend VARCHAR, runtime VARCHAR, hash_seed INTEGER, kind VARCHAR NOT NULL,
    value VARCHAR, value_type VARCHAR, digest VARCHAR, loose_digest VARCHAR, exc_type VARCHAR, message VARCHAR,
    limit_hit VARCHAR, signal VARCHAR, exit_code INTEGER, reason VARCHAR, wall_s DOUBLE, run_id VARCHAR,
    created_at TIMESTAMP);
CREATE TABLE verdicts (
    verdict_id VARCHAR PRIMARY KEY, original_program_id VARCHAR, variant_program_id VARCHAR, entry_point VARCHAR,
    input_id VARCHAR, verdict VARCHAR NOT NULL, reason VARCHAR NOT NULL, detail VARCHAR, original_outcome JSON,
    variant_outcome JSON, compare_mode VARCHAR, executions INTEGER, sandbox_backend VARCHAR, sandbox_runtime VARCHAR,
    run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE pairs (
    pair_id VARCHAR PRIMARY KEY, problem_id VARCHAR, sample_id VARCHAR, verdict_id VARCHAR NOT NULL,
    original_program_id VARCHAR NOT NULL, variant_program_id VARCHAR NOT NULL, input_id VARCHAR NOT NULL,
    entry_point VARCHAR, generator_agent_id VARCHAR, round INTEGER, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE evaluator_answers (
    answer_id VARCHAR PRIMARY KEY, pair_id VARCHAR NOT NULL, agent_id VARCHAR, response_id VARCHAR,
    answer_index INTEGER, input_id VARCHAR, claimed_equivalent BOOLEAN, weight INTEGER, verdict_id VARCHAR,
    counted BOOLEAN, diverged BOOLEAN, reason VARCHAR, round INTEGER, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE difficulty_labels (
    pair_id VARCHAR NOT NULL, evaluator_agent_id VARCHAR NOT NULL, round INTEGER NOT NULL, n_answers INTEGER,
    n_failures INTEGER, difficulty INTEGER, run_id VARCHAR, created_at TIMESTAMP,
    PRIMARY KEY (pair_id, evaluator_agent_id, round));
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY, generator_agent_id VARCHAR, evaluator_agent_id VARCHAR, curves JSON,
    started_at TIMESTAMP, finished_at TIMESTAMP);
CREATE TABLE training_sets (
    snapshot_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, role VARCHAR NOT NULL, config JSON, config_hash VARCHAR,
    source_runs JSON, source_rounds JSON, counts JSON, path VARCHAR, created_at TIMESTAMP);
CREATE TABLE training_jobs (
    job_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, role VARCHAR NOT NULL, base_model VARCHAR,
    snapshot_id VARCHAR, hyperparams JSON, versions JSON, status VARCHAR, metrics JSON, run_id VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP);
CREATE TABLE adapters (
    adapter_id VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, base_model VARCHAR, path VARCHAR, job_id VARCHAR,
    snapshot_id VARCHAR, promoted BOOLEAN DEFAULT FALSE, promoted_at TIMESTAMP, created_at TIMESTAMP);
"""

VIEWS_V1 = """
CREATE OR REPLACE VIEW latest_difficulty AS
SELECT pair_id, evaluator_agent_id, round, difficulty FROM (
    SELECT *, row_number() OVER (PARTITION BY pair_id ORDER BY round DESC, created_at DESC) AS rank
    FROM difficulty_labels) WHERE rank = 1;
CREATE OR REPLACE VIEW verified_pairs AS
SELECT p.pair_id, p.problem_id, pr.source, p.entry_point,
       o.code AS original_code, v.code AS variant_code,
       CAST(i.literal AS VARCHAR) AS diverging_input,
       vd.original_outcome, vd.variant_outcome,
       p.generator_agent_id AS generator, p.round, d.difficulty, d.evaluator_agent_id AS evaluator,
       p.run_id, p.created_at
FROM pairs p
JOIN verdicts vd USING (verdict_id)
JOIN programs o ON o.program_id = p.original_program_id
JOIN programs v ON v.program_id = p.variant_program_id
JOIN inputs i ON i.input_id = p.input_id
LEFT JOIN problems pr ON pr.problem_id = p.problem_id
LEFT JOIN latest_difficulty d ON d.pair_id = p.pair_id
WHERE vd.verdict = 'diverges';
CREATE OR REPLACE VIEW rejection_reasons AS
SELECT round, reason, count(*) AS samples FROM samples WHERE status <> 'valid' GROUP BY ALL;
CREATE OR REPLACE VIEW round_stats AS
WITH s AS (
    SELECT round, count(*) AS samples, count(*) FILTER (WHERE status = 'valid') AS valid_samples
    FROM samples GROUP BY round),
p AS (SELECT round, count(*) AS verified_pairs FROM pairs GROUP BY round),
a AS (SELECT round, count(*) FILTER (WHERE counted) AS answers, count(*) FILTER (WHERE counted AND diverged)
          AS successful_answers FROM evaluator_answers GROUP BY round),
d AS (SELECT round, count(*) AS evaluated_pairs, count(*) FILTER (WHERE difficulty = 10) AS difficulty_10,
          histogram(difficulty) AS difficulty_histogram FROM difficulty_labels GROUP BY round)
SELECT coalesce(s.round, p.round, a.round, d.round) AS round,
       coalesce(s.samples, 0) AS samples, coalesce(s.valid_samples, 0) AS valid_samples,
       s.valid_samples / nullif(s.samples, 0) AS generator_validity,
       coalesce(p.verified_pairs, 0) AS verified_pairs,
       a.successful_answers / nullif(a.answers, 0) AS evaluator_success_rate,
       coalesce(d.evaluated_pairs, 0) AS evaluated_pairs, d.difficulty_histogram,
       d.difficulty_10 / nullif(d.evaluated_pairs, 0) AS share_difficulty_10
FROM s FULL JOIN p USING (round) FULL JOIN a USING (round) FULL JOIN d USING (round);
"""

HYGIENE_V2 = """
ALTER TABLE pairs ADD COLUMN variant_ast_hash VARCHAR;
ALTER TABLE pairs ADD COLUMN duplicate_of VARCHAR;
ALTER TABLE pairs ADD COLUMN duplicate_kind VARCHAR;
ALTER TABLE pairs ADD COLUMN similarity DOUBLE;
ALTER TABLE pairs ADD COLUMN flags JSON;
ALTER TABLE training_sets ADD COLUMN problem_ids JSON;
ALTER TABLE training_sets ADD COLUMN removed JSON;
CREATE TABLE audits (
    audit_id VARCHAR PRIMARY KEY, audit_run VARCHAR NOT NULL, subject VARCHAR NOT NULL, pair_id VARCHAR NOT NULL,
    answer_id VARCHAR, stored_verdict VARCHAR, verdict VARCHAR, reason VARCHAR, reproduced BOOLEAN NOT NULL,
    detail VARCHAR, backend VARCHAR, hash_seeds JSON, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE eval_items (
    item_id VARCHAR PRIMARY KEY, suite VARCHAR NOT NULL, origin VARCHAR, problem_id VARCHAR, text VARCHAR NOT NULL,
    ast_hash VARCHAR, created_at TIMESTAMP);
"""
"""Data hygiene (issue 11). On ``pairs``, set once when the pair is stored: the variant's normalised AST hash, the
earlier pair it duplicates (``duplicate_kind`` exact | near, with the estimated Jaccard ``similarity``) and its
degenerate ``flags`` (a JSON list of codes). ``audits``: insert-only re-verifications (subject pair | answer); a
pair whose latest audit did not reproduce leaves ``verified_pairs``. ``eval_items``: everything an evaluation
measures on (held-out problems, benchmark files), by content hash, for decontamination. ``training_sets`` gain the
problems each snapshot touched and what decontamination removed."""

VIEWS_V2 = """
CREATE OR REPLACE VIEW latest_audit AS
SELECT pair_id, reproduced, verdict, reason, audit_run, created_at FROM (
    SELECT *, row_number() OVER (PARTITION BY pair_id ORDER BY created_at DESC, audit_id) AS rank
    FROM audits WHERE subject = 'pair') WHERE rank = 1;
CREATE OR REPLACE VIEW all_pairs AS
SELECT p.pair_id, p.problem_id, pr.source, p.entry_point,
       o.code AS original_code, v.code AS variant_code,
       CAST(i.literal AS VARCHAR) AS diverging_input,
       vd.original_outcome, vd.variant_outcome,
       p.generator_agent_id AS generator, p.round, d.difficulty, d.evaluator_agent_id AS evaluator,
       p.run_id, p.created_at,
       coalesce(pr.split, 'train') AS split, coalesce(p.flags, '[]') AS flags,
       p.duplicate_of, p.duplicate_kind, p.similarity, la.reproduced AS audit_reproduced, la.reason AS audit_reason,
       CASE WHEN vd.verdict <> 'diverges' THEN 'not_diverging'
            WHEN p.duplicate_of IS NOT NULL THEN 'duplicate'
            WHEN la.reproduced = false THEN 'not_reproduced'
            ELSE 'verified' END AS status
FROM pairs p
JOIN verdicts vd USING (verdict_id)
JOIN programs o ON o.program_id = p.original_program_id
JOIN programs v ON v.program_id = p.variant_program_id
JOIN inputs i ON i.input_id = p.input_id
LEFT JOIN problems pr ON pr.problem_id = p.problem_id
LEFT JOIN latest_difficulty d ON d.pair_id = p.pair_id
LEFT JOIN latest_audit la ON la.pair_id = p.pair_id;
CREATE OR REPLACE VIEW verified_pairs AS
SELECT pair_id, problem_id, source, entry_point, original_code, variant_code, diverging_input, original_outcome,
       variant_outcome, generator, round, difficulty, evaluator, run_id, created_at, split, flags
FROM all_pairs WHERE status = 'verified';
CREATE OR REPLACE VIEW duplicate_pairs AS
SELECT pair_id, duplicate_of, duplicate_kind, similarity, problem_id, round, run_id, variant_code
FROM all_pairs WHERE status = 'duplicate';
"""
"""``verified_pairs`` keeps the public contract's columns (plus split and flags) and leaves out duplicates and
pairs an audit could not reproduce; ``all_pairs`` shows every pair with its ``status``."""

INFRASTRUCTURE_V3 = """
CREATE TABLE validations (
    problem_id VARCHAR NOT NULL, validation_key VARCHAR NOT NULL, status VARCHAR NOT NULL, reason VARCHAR,
    limits JSON, runner_sha VARCHAR, run_id VARCHAR NOT NULL, created_at TIMESTAMP,
    PRIMARY KEY (problem_id, validation_key, run_id));
ALTER TABLE runs ADD COLUMN host VARCHAR;
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP;
"""
"""Issue 12. ``validations``: a problem's validation under one ``validation_key`` (limits, runner version, backend,
interpreter), insert-only (a re-check adds a row; the latest counts), so a later run with other limits validates
again instead of trusting a stale ``invalid`` (``problems.validation_*`` keep the first validation as provenance).
``runs`` gain where a run lives (host, pid) and when it last showed life, so a SIGKILLed run is found dead and
marked ``crashed`` by the next run or ``sinq db info``."""

EVALUATION_V4 = """
CREATE TABLE eval_runs (
    eval_id VARCHAR PRIMARY KEY, suite VARCHAR NOT NULL, suite_version VARCHAR, model VARCHAR, adapter VARCHAR,
    role VARCHAR, mode VARCHAR, sampling JSON, seeds JSON, n INTEGER NOT NULL, metrics JSON, items_hash VARCHAR,
    code_version VARCHAR, detail JSON, created_at TIMESTAMP);
CREATE TABLE eval_results (
    eval_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, query_index INTEGER NOT NULL, correct BOOLEAN,
    score DOUBLE, detail JSON, PRIMARY KEY (eval_id, item_id, query_index));
"""
"""Issue 13. ``eval_runs``: one evaluation of one model (+ adapter) on one suite, with its sampling, seeds, suite
version, the hash of the items it measured on and its metrics (each ``{"value","low","high","k","n"}``).
``eval_results``: every query's outcome (an identifier-swap item asked in both orders is two queries), so two runs
on the same items can be compared item by item (McNemar, paired bootstrap). ``eval_items`` stays the
decontamination list; each suite registers its items there too."""

GATE_V5 = """
CREATE TABLE gate_decisions (
    decision_id VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, adapter_id VARCHAR NOT NULL,
    incumbent_adapter_id VARCHAR, incumbent_model VARCHAR, passed BOOLEAN NOT NULL, reasons JSON, figures JSON,
    forced BOOLEAN NOT NULL DEFAULT FALSE, reason_text VARCHAR, created_at TIMESTAMP);
ALTER TABLE adapters ADD COLUMN status VARCHAR DEFAULT 'registered';
UPDATE adapters SET status = CASE WHEN promoted THEN 'promoted' ELSE 'registered' END;
"""
"""Issue 13, the promotion gate. ``gate_decisions``: each decision on a candidate adapter against the incumbent
(the promoted adapter's id, or none and the base model), with one reason per suite and the figures (per suite:
both eval ids, values, the paired delta with its interval, McNemar's p); ``forced`` marks a user's override
(``sinq models promote --force --reason``). ``adapters.status``: registered | promoted | rejected."""

GAME_SETS_V6 = """
CREATE TABLE eval_sets (
    set_id VARCHAR PRIMARY KEY, suite VARCHAR NOT NULL, name VARCHAR, content_hash VARCHAR NOT NULL,
    pairs INTEGER NOT NULL, problems INTEGER NOT NULL, detail JSON, created_at TIMESTAMP);
CREATE TABLE eval_set_pairs (
    set_id VARCHAR NOT NULL, position INTEGER NOT NULL, pair_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
    problem_id VARCHAR NOT NULL, source VARCHAR, entry_point VARCHAR, original_code VARCHAR NOT NULL,
    variant_code VARCHAR NOT NULL, diverging_input VARCHAR NOT NULL, difficulty INTEGER, seed_inputs JSON,
    PRIMARY KEY (set_id, pair_id));
"""
"""Issue 13, the ``game`` suite. ``eval_sets``: a frozen evaluation set (`sinq eval freeze`), named by the hash of
its content; ``eval_set_pairs``: a copy of each verified held-out pair it holds (codes, diverging input, the
difficulty it had, the problem's seed inputs), so the set stays the same whatever is stored or audited later. Each
pair's variant is in ``eval_items`` too, which keeps it out of every training set."""

PAIR_KINDS_V7 = """
ALTER TABLE pairs ADD COLUMN pair_kind VARCHAR DEFAULT 'inequivalent';
CREATE TABLE equivalence_evidence (
    pair_id VARCHAR PRIMARY KEY, evidence VARCHAR NOT NULL, transformations JSON, inputs_tried INTEGER NOT NULL,
    input_ids JSON NOT NULL, verdict_ids JSON NOT NULL, fuzz JSON, run_id VARCHAR, created_at TIMESTAMP);
CREATE TABLE pair_relabels (
    pair_id VARCHAR PRIMARY KEY, relabelled_to VARCHAR NOT NULL, new_pair_id VARCHAR, answer_id VARCHAR,
    verdict_id VARCHAR NOT NULL, input_id VARCHAR NOT NULL, run_id VARCHAR, created_at TIMESTAMP);
CREATE OR REPLACE VIEW all_pairs AS
SELECT p.pair_id, p.problem_id, pr.source, p.entry_point,
       o.code AS original_code, v.code AS variant_code,
       CAST(i.literal AS VARCHAR) AS diverging_input,
       vd.original_outcome, vd.variant_outcome,
       p.generator_agent_id AS generator, p.round, d.difficulty, d.evaluator_agent_id AS evaluator,
       p.run_id, p.created_at,
       coalesce(pr.split, 'train') AS split, coalesce(p.flags, '[]') AS flags,
       p.duplicate_of, p.duplicate_kind, p.similarity, la.reproduced AS audit_reproduced, la.reason AS audit_reason,
       CASE WHEN coalesce(p.pair_kind, 'inequivalent') = 'equivalent' THEN
                CASE WHEN rl.pair_id IS NOT NULL THEN 'refuted'
                     WHEN vd.verdict <> 'same' THEN 'not_equal'
                     WHEN p.duplicate_of IS NOT NULL THEN 'duplicate'
                     ELSE 'equivalent' END
            WHEN vd.verdict <> 'diverges' THEN 'not_diverging'
            WHEN p.duplicate_of IS NOT NULL THEN 'duplicate'
            WHEN la.reproduced = false THEN 'not_reproduced'
            ELSE 'verified' END AS status,
       coalesce(p.pair_kind, 'inequivalent') AS pair_kind
FROM pairs p
JOIN verdicts vd USING (verdict_id)
JOIN programs o ON o.program_id = p.original_program_id
JOIN programs v ON v.program_id = p.variant_program_id
JOIN inputs i ON i.input_id = p.input_id
LEFT JOIN problems pr ON pr.problem_id = p.problem_id
LEFT JOIN latest_difficulty d ON d.pair_id = p.pair_id
LEFT JOIN latest_audit la ON la.pair_id = p.pair_id
LEFT JOIN pair_relabels rl ON rl.pair_id = p.pair_id;
CREATE OR REPLACE VIEW equivalent_pairs AS
WITH answers AS (
    SELECT pair_id, count(*) FILTER (WHERE counted) AS answers,
           count(*) FILTER (WHERE counted AND claimed_equivalent) AS said_yes,
           count(*) FILTER (WHERE counted AND NOT coalesce(claimed_equivalent, false) AND NOT coalesce(diverged, false)
                            AND claimed_equivalent IS NOT NULL) AS false_alarms,
           count(*) FILTER (WHERE counted AND coalesce(diverged, false)) AS refuting_answers
    FROM evaluator_answers GROUP BY pair_id)
SELECT a.pair_id, a.problem_id, a.source, a.entry_point, a.original_code, a.variant_code,
       e.transformations, e.inputs_tried, e.evidence, e.input_ids,
       coalesce(n.answers, 0) AS answers, coalesce(n.said_yes, 0) AS said_yes,
       coalesce(n.false_alarms, 0) AS false_alarms, n.said_yes / nullif(n.answers, 0) AS evaluator_accuracy,
       a.generator, a.round, a.run_id, a.created_at, a.split
FROM all_pairs a
JOIN equivalence_evidence e USING (pair_id)
LEFT JOIN answers n USING (pair_id)
WHERE a.status = 'equivalent';
CREATE OR REPLACE VIEW round_stats AS
WITH s AS (
    SELECT round, count(*) AS samples, count(*) FILTER (WHERE status = 'valid') AS valid_samples
    FROM samples GROUP BY round),
p AS (SELECT round, count(*) FILTER (WHERE coalesce(pair_kind, 'inequivalent') = 'inequivalent') AS verified_pairs,
             count(*) FILTER (WHERE pair_kind = 'equivalent') AS equivalent_pairs FROM pairs GROUP BY round),
a AS (SELECT e.round,
             count(*) FILTER (WHERE e.counted AND k.kind = 'inequivalent') AS answers,
             count(*) FILTER (WHERE e.counted AND k.kind = 'inequivalent' AND e.diverged) AS successful_answers,
             count(*) FILTER (WHERE e.counted AND k.kind = 'inequivalent' AND e.claimed_equivalent) AS misses,
             count(*) FILTER (WHERE e.counted AND k.kind = 'equivalent') AS equivalent_answers,
             count(*) FILTER (WHERE e.counted AND k.kind = 'equivalent'
                              AND (e.claimed_equivalent OR e.diverged)) AS equivalent_correct,
             count(*) FILTER (WHERE e.counted AND k.kind = 'equivalent' AND e.claimed_equivalent = false
                              AND NOT coalesce(e.diverged, false)) AS false_alarms
      FROM evaluator_answers e
      JOIN (SELECT pair_id, coalesce(pair_kind, 'inequivalent') AS kind FROM pairs) k USING (pair_id)
      GROUP BY e.round),
d AS (SELECT l.round, count(*) AS evaluated_pairs, count(*) FILTER (WHERE l.difficulty = 10) AS difficulty_10,
             histogram(l.difficulty) AS difficulty_histogram
      FROM difficulty_labels l JOIN pairs k USING (pair_id)
      WHERE coalesce(k.pair_kind, 'inequivalent') = 'inequivalent' GROUP BY l.round)
SELECT coalesce(s.round, p.round, a.round, d.round) AS round,
       coalesce(s.samples, 0) AS samples, coalesce(s.valid_samples, 0) AS valid_samples,
       s.valid_samples / nullif(s.samples, 0) AS generator_validity,
       coalesce(p.verified_pairs, 0) AS verified_pairs,
       a.successful_answers / nullif(a.answers, 0) AS evaluator_success_rate,
       coalesce(d.evaluated_pairs, 0) AS evaluated_pairs, d.difficulty_histogram,
       d.difficulty_10 / nullif(d.evaluated_pairs, 0) AS share_difficulty_10,
       coalesce(p.equivalent_pairs, 0) AS equivalent_pairs, coalesce(a.equivalent_answers, 0) AS equivalent_answers,
       a.equivalent_correct / nullif(a.equivalent_answers, 0) AS evaluator_accuracy_equivalent,
       a.false_alarms / nullif(a.equivalent_answers, 0) AS false_alarm_rate,
       a.misses / nullif(a.answers, 0) AS miss_rate
FROM s FULL JOIN p USING (round) FULL JOIN a USING (round) FULL JOIN d USING (round);
"""
"""Issue 15, equivalent pairs. ``pairs.pair_kind``: inequivalent (a verified divergence: the stored verdict
diverges) or equivalent (fuzzed equal: the stored verdict, on the first input tried, is ``same``; never proven).
``equivalence_evidence``: how an equivalent pair was made (``construction``: semantics-preserving transformations;
``llm``: an equivalent-rewrite prompt, fuzz-filtered alike), the transformations, and every input tried with its
verdict (each ``same``, stored in verdicts/executions so `sinq verify` can settle them again). ``pair_relabels``: an
equivalent pair an evaluator answer refuted (a "No" whose input diverges), with the verdict that did it and the
inequivalent pair made of it; insert-only like the rest. ``all_pairs`` gains ``pair_kind`` and the statuses
equivalent | refuted | not_equal; ``verified_pairs`` stays inequivalent only; ``equivalent_pairs`` lists the standing
ones with their evidence and the evaluator's figures; ``round_stats`` keeps its figures on inequivalent pairs and
adds equivalent_pairs, evaluator_accuracy_equivalent, false_alarm_rate (a "No" without a divergence, over answers on
equivalent pairs) and miss_rate (a "Yes" on an inequivalent pair, over answers on those)."""

EQUIVALENCE_ATTEMPTS_V8 = """
CREATE TABLE equivalence_attempts (
    attempt_id VARCHAR PRIMARY KEY, problem_id VARCHAR NOT NULL, maker_id VARCHAR NOT NULL, round INTEGER,
    candidates INTEGER NOT NULL, fuzzed INTEGER NOT NULL, kept INTEGER NOT NULL, dropped JSON NOT NULL,
    run_id VARCHAR, created_at TIMESTAMP);
CREATE OR REPLACE VIEW equivalence_drops AS
SELECT a.run_id, a.round, a.maker_id, d.key AS reason, sum(CAST(d.value AS INTEGER)) AS candidates
FROM equivalence_attempts a, json_each(a.dropped) d
GROUP BY ALL;
"""
"""``equivalence_attempts``: one row per problem an equivalent-pair maker tried in a round (how many candidates it
proposed, fuzzed, kept, and the dropped ones by reason), so a rerun tries each problem once and a broken
transformation shows up as a reason count (``equivalence_drops`` sums them per run)."""

EQUIVALENT_AUDITS_V9 = """
CREATE OR REPLACE VIEW all_pairs AS
SELECT p.pair_id, p.problem_id, pr.source, p.entry_point,
       o.code AS original_code, v.code AS variant_code,
       CAST(i.literal AS VARCHAR) AS diverging_input,
       vd.original_outcome, vd.variant_outcome,
       p.generator_agent_id AS generator, p.round, d.difficulty, d.evaluator_agent_id AS evaluator,
       p.run_id, p.created_at,
       coalesce(pr.split, 'train') AS split, coalesce(p.flags, '[]') AS flags,
       p.duplicate_of, p.duplicate_kind, p.similarity, la.reproduced AS audit_reproduced, la.reason AS audit_reason,
       CASE WHEN coalesce(p.pair_kind, 'inequivalent') = 'equivalent' THEN
                CASE WHEN rl.pair_id IS NOT NULL THEN 'refuted'
                     WHEN vd.verdict <> 'same' THEN 'not_equal'
                     WHEN p.duplicate_of IS NOT NULL THEN 'duplicate'
                     WHEN la.reproduced = false THEN 'not_reproduced'
                     ELSE 'equivalent' END
            WHEN vd.verdict <> 'diverges' THEN 'not_diverging'
            WHEN p.duplicate_of IS NOT NULL THEN 'duplicate'
            WHEN la.reproduced = false THEN 'not_reproduced'
            ELSE 'verified' END AS status,
       coalesce(p.pair_kind, 'inequivalent') AS pair_kind
FROM pairs p
JOIN verdicts vd USING (verdict_id)
JOIN programs o ON o.program_id = p.original_program_id
JOIN programs v ON v.program_id = p.variant_program_id
JOIN inputs i ON i.input_id = p.input_id
LEFT JOIN problems pr ON pr.problem_id = p.problem_id
LEFT JOIN latest_difficulty d ON d.pair_id = p.pair_id
LEFT JOIN latest_audit la ON la.pair_id = p.pair_id
LEFT JOIN pair_relabels rl ON rl.pair_id = p.pair_id;
"""
"""Audits of equivalent pairs: an equivalent pair's audit re-verifies every input it was fuzzed on (each must be
``same`` again, with the stored outcomes); one whose latest audit did not reproduce gets the status
``not_reproduced`` and leaves ``equivalent_pairs`` (and so training sets, exports and evaluation sets), as an
inequivalent pair leaves ``verified_pairs``."""

DECIDED_BY_V10 = """
ALTER TABLE gate_decisions ADD COLUMN decided_by VARCHAR;
"""
"""Issue 26, nothing is promoted without evidence. ``gate_decisions.decided_by``: who made the decision (user@host
of the process that ran the gate, or of the user who forced a promotion with ``sinq models promote --force
--reason``), beside when (``created_at``) and why (``reasons``, ``reason_text``)."""

TRAINING_JOBS_LIVENESS_V11 = """
ALTER TABLE training_jobs ADD COLUMN host VARCHAR;
ALTER TABLE training_jobs ADD COLUMN pid INTEGER;
ALTER TABLE training_jobs ADD COLUMN heartbeat_at TIMESTAMP;
ALTER TABLE training_jobs ADD COLUMN output_path VARCHAR;
"""
"""Issue 26, a killed fine-tune. ``training_jobs`` gain where a job lives (host, pid), when it last showed life
(``heartbeat_at``, beaten during training) and the absolute folder its adapter goes to (``output_path``): a
``running`` job whose process is gone is marked ``crashed`` by the next training command, `sinq db info` or `sinq
models list`, and its unfinished folder removed."""

PAIR_REWRITE_V12 = """
ALTER TABLE pairs ADD COLUMN rewrite JSON;
"""
"""Issue 27, one surface for both kinds. ``pairs.rewrite``: the semantics-preserving rewrite the variant went
through (``transformations`` in order, their ``mix`` of renaming/local/structural rules, the ``seed``, ``of``:
``original`` for an equivalent pair, ``mutant`` for an inequivalent one; ``kept_plain`` with the reason where a
mutant's rewrite was refused or no longer diverged); NULL for a variant that went through none (older rows too)."""

PASSES_V13 = """
ALTER TABLE runs ADD COLUMN pass_id VARCHAR;
ALTER TABLE samples ADD COLUMN pass_id VARCHAR;
ALTER TABLE samples ADD COLUMN variant_key VARCHAR;
CREATE TABLE exhausted_problems (
    problem_id VARCHAR NOT NULL, generator_agent_id VARCHAR NOT NULL, pass_id VARCHAR NOT NULL,
    after_passes INTEGER NOT NULL, run_id VARCHAR, created_at TIMESTAMP,
    PRIMARY KEY (problem_id, generator_agent_id, pass_id));
"""
"""Issue 28, a night is a sampling pass. ``runs.pass_id`` and ``samples.pass_id``: the pass a run and its samples
belong to (part of the sample's key; NULL on older rows); ``samples.variant_key``: the normalised AST hash of the
variant as the generator proposed it (before any rewrite of issue 27), so later passes never propose it again for
the problem. ``exhausted_problems``: a problem skipped in a pass because the generator found no new unique verified
pair for it in its last ``after_passes`` passes."""

MIGRATIONS: list[Migration] = [
    Migration(1, "the whole game: runs, problems, agents, LLM traffic, programs, samples, executions, verdicts, "
                 "pairs, evaluator answers, difficulty, rounds, training sets/jobs, adapters; public views",
              TABLES_V1 + VIEWS_V1),
    Migration(2, "data hygiene: variant AST hash, duplicate_of, degenerate flags on pairs; audits; evaluation "
                 "items; what each training set touched and removed; all_pairs and verified_pairs without "
                 "duplicates or unreproduced pairs", HYGIENE_V2 + VIEWS_V2),
    Migration(3, "infrastructure never becomes data: validations keyed by limits and runner version; host, pid "
                 "and heartbeat on runs for the stale-run check", INFRASTRUCTURE_V3),
    Migration(4, "evaluation: eval_runs (suite, model, adapter, sampling, seeds, metrics) and every query's "
                 "outcome in eval_results", EVALUATION_V4),
    Migration(5, "the promotion gate: gate_decisions (candidate against incumbent, reasons, figures, forced) and "
                 "adapters.status (registered | promoted | rejected)", GATE_V5),
    Migration(6, "the game suite: eval_sets (frozen, content-hashed sets of held-out verified pairs) and "
                 "eval_set_pairs (a copy of each pair)", GAME_SETS_V6),
    Migration(7, "equivalent pairs: pairs.pair_kind, equivalence_evidence, pair_relabels; all_pairs statuses per "
                 "kind, the equivalent_pairs view, round_stats per kind (false alarms, misses)", PAIR_KINDS_V7),
    Migration(8, "equivalence_attempts: what each equivalent-pair maker tried per problem and round (candidates, "
                 "kept, dropped by reason); the equivalence_drops view", EQUIVALENCE_ATTEMPTS_V8),
    Migration(9, "audits of equivalent pairs: all_pairs gives an equivalent pair whose latest audit failed the "
                 "status not_reproduced (it leaves equivalent_pairs)", EQUIVALENT_AUDITS_V9),
    Migration(10, "who decided: gate_decisions.decided_by (user@host of the gate run or of a forced promotion)",
              DECIDED_BY_V10),
    Migration(11, "training jobs are reaped like runs: host, pid, heartbeat_at and output_path on training_jobs",
              TRAINING_JOBS_LIVENESS_V11),
    Migration(12, "one surface for both kinds: pairs.rewrite (the rewrite a variant went through, per pair)",
              PAIR_REWRITE_V12),
    Migration(13, "a night is a sampling pass: pass_id on runs and samples, samples.variant_key (the proposed "
                  "variant's AST hash), exhausted_problems", PASSES_V13),
]
LATEST = MIGRATIONS[-1].version


def current_version(con) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'").fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
    return int(row[0] or 0)


def migrate(con) -> int:
    """Apply pending migrations, each in its own transaction; refuse a database newer than this code."""
    version = current_version(con)
    if version > LATEST:
        raise SchemaError(f"database schema version {version} is newer than this sinq understands ({LATEST}); "
                          "upgrade sinq — nothing was changed")
    if version == 0:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                    "description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)")
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)",
                        [migration.version, migration.description])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return LATEST
