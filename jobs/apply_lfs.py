"""Apply job: run every registered LF over the source and write the votes Delta table.

The registry is broadcast to executors; SQL LFs run as native Spark columns, keyword, regex and
lexicon LFs as Arrow compute kernels, Python LFs row by row inside Arrow batches. The votes table
is long and sparse: one row per (row id, LF) that voted or raised. An LF that raises costs an
abstain and an error record, never the job, unless its error rate passes ``apply.max_error_rate``.

Run alone: ``spark-submit jobs/apply_lfs.py --config conf/demo.yaml`` or ``lakelabel apply ...``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import apply_masks, compaction, delta_io, grouped_masks, incremental, incremental_masks, task_masks
from jobs.delta_io import changes as row_changes
from jobs.runtime import command, signals, tracking
from jobs.runtime.runs import run_dir
from jobs.stages import Outcome, finish, votes_table
from jobs.runtime.config import PipelineConfig
from jobs.runtime.exits import few_names
from jobs.runtime.progress import Progress
from jobs.runtime.session import describe
from jobs.delta_io.files import footer_counts, is_local_path
from jobs.delta_io.source import local_path_missing
from jobs.lf_pass import _GOLD, check_lf_source, compute_votes, pickle_lfs, text_columns, vote_function, votes_table_schema  # noqa: F401 (re-exported)
from jobs.delta_io.sources import (Source, check_columns, check_source, check_source_counts, check_source_unchanged,
                                   load_source, precheck_lf_columns)
from jobs.runtime import lf_sources
from jobs.apply_record import VOTES_META_KEY, ApplyResult, LFApplyStats, lf_summaries, located
from jobs.tasks import TaskSet, build_task_set, is_multitask
from lf_library import LFRegistry
from lf_library.apply import NOT_ONE_VOTE_PER_ROW, required_columns
from lf_library.budget import TIMEOUT_KIND
from lf_library.errors import InputDataError, LFError, LFErrorRateExceeded, LFTimeoutError

log = logging.getLogger(__name__)


def build_registry(cfg: PipelineConfig, task_set: TaskSet | None = None) -> LFRegistry:
    """Load the LF registry named by the config: LF modules plus declared LFs (``lfs.declared``, ``lfs.files``).

    With several tasks (``tasks:``, ``multi_label:``), every task's LFs (``task_set``'s, built when not given):
    one apply pass votes for all. LFs reading globals their versions cannot cover are warned about here (once per LF).
    """
    if task_set is None and is_multitask(cfg):
        task_set = build_task_set(cfg)
    registry = task_set.registry if task_set is not None else lf_sources.build_registry(cfg)
    lf_sources.warn_unversioned(registry.lfs)
    return registry


def read_votes_files(spark: SparkSession, files: list[str]) -> DataFrame:
    """Votes Parquet files as one DataFrame, ``lf_name`` read from the ``lf_name=`` folders they sit in."""
    reader = spark.read
    hive = next((f for f in files if "/lf_name=" in f), None)
    if hive is not None:
        reader = reader.option("basePath", hive.rsplit("/lf_name=", 1)[0])
    return reader.parquet(*files)


def _lf_stats_from_files(
    spark: SparkSession, files: list[str], registry: LFRegistry, n_rows: int, samples: int,
    carried: Mapping[str, LFApplyStats] | None = None,
) -> tuple[tuple[LFApplyStats, ...], dict[str, int]]:
    """Per-LF vote and error counts, read back from the Parquet files an apply just wrote.

    ``carried``: LF name -> the counts of its votes kept from the previous run, whose files are
    not in ``files``; the counts in ``files`` add to them and the error samples merge (the first
    ``samples`` by row id, as one pass over all files would pick).
    """
    carried = carried or {}
    counts: dict[str, dict[str, int]] = {lf.name: {"votes": 0, "errors": 0, "out_of_space": 0} for lf in registry.lfs}
    examples: dict[str, list[dict[str, str]]] = {lf.name: [] for lf in registry.lfs}
    for name, old in carried.items():
        counts[name] = {"votes": old.votes, "errors": old.errors, "out_of_space": 0}
        examples[name] = [dict(s) for s in old.error_samples]
    # A file whose footer shows no error and no abstain row holds only votes: its row count is its
    # LF's votes. Only the other files (errors to count and sample) are read by Spark.
    files, clean = _votes_from_footers(files)
    for name, n in clean.items():
        counts.setdefault(name, {"votes": 0, "errors": 0, "out_of_space": 0})["votes"] += n
    if files:
        written = read_votes_files(spark, files)
        rows = written.groupBy("lf_name").agg(
            F.sum((F.col("vote") >= 0).cast("long")).alias("votes"),
            F.sum(F.col("error").isNotNull().cast("long")).alias("errors"),
            F.sum((F.col("error_kind") == "out_of_space").cast("long")).alias("out_of_space"),
            F.sum((F.col("error_kind") == TIMEOUT_KIND).cast("long")).alias("timeouts"),
        ).collect()
        for r in rows:
            c = counts.get(r["lf_name"], {"votes": 0, "errors": 0})
            counts[r["lf_name"]] = {"votes": c["votes"] + r["votes"], "errors": c["errors"] + r["errors"],
                                    "out_of_space": r["out_of_space"], "timeouts": r["timeouts"]}
        if any(c.get("timeouts") for c in counts.values()):
            _raise_timeout(written)
        if any(r["errors"] for r in rows):  # errors in these files (carried samples are merged below)
            from pyspark.sql.window import Window

            rank = F.row_number().over(Window.partitionBy("lf_name").orderBy(F.col("row_id").cast("string")))
            sample_rows = (
                written.where(F.col("error").isNotNull())
                .withColumn("_r", rank)
                .where(F.col("_r") <= max(samples, 1))
                .select("lf_name", F.col("row_id").cast("string").alias("row_id"), "error", "error_kind")
                .collect()
            )
            for r in sample_rows:
                examples[r["lf_name"]].append({"row_id": r["row_id"], "error": r["error"], "kind": r["error_kind"]})
    for name in carried:  # Spark orders strings by UTF-8 bytes, Python by code points: the same order
        examples[name].sort(key=lambda s: s["row_id"])
    out = []
    for lf in registry.lfs:
        c = counts[lf.name]
        out.append(
            LFApplyStats(
                name=lf.name,
                version=lf.version,
                kind=lf.kind,
                votes=int(c["votes"]),
                errors=int(c["errors"]),
                error_rate=(c["errors"] / n_rows) if n_rows else 0.0,
                error_samples=examples[lf.name][:samples],
                origin=registry.origin(lf.name),
            )
        )
    return tuple(out), {name: c["out_of_space"] for name, c in counts.items()}


def _votes_from_footers(files: list[str]) -> tuple[list[str], dict[str, int]]:
    """``(files to read, votes per LF)``: the votes of the files whose Parquet footers show only votes.

    Such a file (``lf_name=<name>/`` folder, no ``error`` set, smallest ``vote`` >= 0) holds one
    row per vote of its LF, so its row count is that LF's votes there; the others are returned to
    be read (error counts and samples).
    """
    from urllib.parse import unquote

    rest: list[str] = []
    votes: dict[str, int] = {}
    for path in files:
        folder = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
        counts = footer_counts(path, ("vote", "error")) if folder.startswith("lf_name=") else None
        if counts is None or counts["nulls"]["error"] != counts["rows"] or (counts["rows"] and (
                counts["min"]["vote"] is None or counts["min"]["vote"] < 0)):  # fmt: skip
            rest.append(path)
            continue
        name = unquote(folder[len("lf_name="):])  # the writer escapes special characters as %XX
        votes[name] = votes.get(name, 0) + counts["rows"]
    return rest, votes


def _raise_timeout(written: DataFrame) -> None:
    """An LF ran out of its time budget: fail naming it and the row it was on."""
    r = (written.where(F.col("error_kind") == TIMEOUT_KIND)
         .select("lf_name", F.col("row_id").cast("string").alias("row_id"), "error").first())
    raise LFTimeoutError(
        f"LF {r['lf_name']!r} {r['error']} (at row id {r['row_id']}): it hangs or is far too slow; fix the LF, "
        f"raise apply.lf_timeout_seconds (0 turns the budget off), or lower apply.batch_size (the budget is per batch: "
        f"long texts make long batches)"
    )


def _check_coverage(spark: SparkSession, files: list[str], stats: Sequence[LFApplyStats], n_rows: int,
                    min_coverage: float, source: str) -> None:
    """Fail when no LF voted on any row, or fewer rows than ``apply.min_coverage`` got a vote."""
    if not any(lf.votes for lf in stats):
        raise InputDataError(
            f"no LF voted on any of the {n_rows} rows of {source} ({len(stats)} LFs all abstained): the labels "
            f"would carry no information, so nothing is written and the previous votes and labels stay. Check "
            f"that the LFs read the right columns (lfs.modules, source.path)"
        )
    if min_coverage <= 0:
        return
    covered = read_votes_files(spark, files).where(F.col("vote") >= 0).select("row_id").distinct().count()
    if covered < min_coverage * n_rows:
        raise InputDataError(
            f"the LFs voted on {covered} of {n_rows} rows of {source} ({_share_below(covered, n_rows)}), below "
            f"apply.min_coverage={min_coverage:.1%}; nothing is written and the previous votes and labels stay. "
            f"Add or fix LFs, or lower apply.min_coverage"
        )


def votes_fingerprint(cfg: PipelineConfig, source: Source, registry: LFRegistry) -> str:
    """Hash of everything that decides the votes: source content, how it is read, the LFs."""
    reading = json.dumps(
        {"format": cfg.source.format, "options": cfg.source.options, "dedupe": cfg.source.drop_duplicate_rows},
        sort_keys=True,
    )
    # Tables that column LFs join decide the votes too.
    tables = "|".join(lf_sources.lf_table_fingerprints(source, registry.lfs))
    return hashlib.sha256(
        f"{source.info.fingerprint}|{source.id_column}|{reading}|{registry.fingerprint}|{tables}".encode()
    ).hexdigest()


def _share_below(part: int, whole: int) -> str:
    """``part / whole`` as a percentage rounded down at 0.1%: 1,999 of 2,000 is 99.9%, not 100.0%."""
    return f"{math.floor(1000 * part / whole) / 10:.1f}%"


def _check_error_budget(stats: Sequence[LFApplyStats], n_rows: int, max_error_rate: float) -> None:
    worst = [lf for lf in stats if lf.error_rate > max_error_rate]
    if worst:
        lf = max(worst, key=lambda s: s.error_rate)
        sample = lf.error_samples[0] if lf.error_samples else {"row_id": "?", "error": "?"}
        missing = _NO_COLUMN.search(str(sample["error"]))
        key = _KEY_ERROR.match(str(sample["error"]))  # a vectorized LF's df["stars"]: maybe a column, maybe not
        fix = (f"A row holds only the LF's fields= columns (all of them without fields=): add "
               f"{missing.group(1)!r} to its fields= if the source has that column, else fix the name"
               if missing else
               f"If {key.group(1)!r} is a source column, add it to the LF's fields= (its DataFrame holds only those); "
               f"else fix the LF, or raise apply.max_error_rate" if key else "Fix the LF, or raise apply.max_error_rate")
        raise LFErrorRateExceeded(
            f"LF {lf.name!r} raised on {lf.errors} of {n_rows} rows ({lf.error_rate:.1%}), above "
            f"apply.max_error_rate={max_error_rate:.1%}; e.g. row id {sample['row_id']}: {sample['error']}. {fix}"
        )


# An LF that reads a column its row lacks (lf_library.core's words): a column missing from its fields=, or a typo.
_NO_COLUMN = re.compile(r"row has no column '([^']+)'; available columns")
_KEY_ERROR = re.compile(r"KeyError: '([^']+)'$")


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    *,
    run_id: str,
    registry: LFRegistry | None = None,
    source: Source | None = None,
    force: bool = False,
    row_masks: bool = True,
    task_masks: Any = None,
    replaced_masks: list[str] | None = None,
) -> ApplyResult:
    """Apply the LF registry to the source and commit the votes table (one Delta transaction).

    The votes table is replaced as a whole, so a rerun never duplicates votes. When the latest
    votes commit came from the same source content, read the same way, and the same LF
    versions, nothing is recomputed (pass ``force=True`` to recompute anyway); the stored error
    counts are still checked against the current ``apply.max_error_rate``. Otherwise only what
    changed is computed (:mod:`jobs.incremental`): new or changed LFs on every row, the other
    LFs on new and changed rows; ``force=True`` computes every LF on every row.

    A full apply also writes each row's vote bitmask for aggregate and write (:mod:`jobs.apply_masks`),
    and so does an incremental one: one that runs no new or changed LF carries the previous masks of the
    rows it does not reapply (:mod:`jobs.incremental_masks`), one that changes the LFs (or has no previous
    masks to carry) groups its new votes by row before its commit (:mod:`jobs.grouped_masks`); unless
    ``row_masks`` is false (callers that group the votes themselves); with ``task_masks``
    (:class:`jobs.task_masks.TaskMasks`, a multi-task run), one bitmask per task. The masks of the
    votes this apply replaces are deleted once it commits; a caller whose later stages may still
    put the votes back passes ``replaced_masks``, gets their folder there and calls
    :func:`retire_masks` when it ends.
    """
    started = time.perf_counter()
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    registry = registry or build_registry(cfg)
    source = source or load_source(spark, cfg.source, io=io)
    votes_path = cfg.table_path("votes")
    fingerprint = votes_fingerprint(cfg, source, registry)
    previous = io.read_metadata(votes_path) if io.table_exists(votes_path) else {}
    if not force and VOTES_META_KEY in previous:
        prior = located(ApplyResult.from_json(previous[VOTES_META_KEY], table=f"the votes table {votes_path}"),
                        votes_path, str(cfg.lakehouse_path))
        if prior.fingerprint == fingerprint:
            _check_error_budget(prior.lfs, prior.n_rows, cfg.apply.max_error_rate)
            apply_masks.sweep(cfg.lakehouse, [prior.row_masks.get("path")])  # a killed attempt's, as below
            io.sweep_leftovers(votes_path)  # and its vote files (a write sweeps them first; none follows here)
            version = io.table_version(votes_path)
            log.info("apply: votes up to date for %s and %d LF versions; reusing votes v%s",
                     source.description, len(registry), version)
            # The votes are the prior commit's; what *this* apply ran is nothing.
            # votes_table: where the votes are now (the record names where they were written: a moved lakehouse).
            return replace(prior, votes_table=votes_path, votes_version=version, skipped=True,
                           seconds=time.perf_counter() - started,
                           applied_lfs=(), reused_lfs=tuple(sorted(registry.names)), applied_rows=0,
                           row_changes={"method": f"votes up to date: reused votes v{version}"})

    prior = (located(ApplyResult.from_json(previous[VOTES_META_KEY], table=f"the votes table {votes_path}"),
                     votes_path, str(cfg.lakehouse_path))
             if VOTES_META_KEY in previous else None)
    if prior is not None:
        prior = _hashes_at_latest(cfg, io, prior)
    keys = incremental.lf_keys(source, registry)
    retyped = incremental.id_type_change(spark, io, votes_path, source) if prior is not None and not force else None
    plan = incremental.plan_apply(prior, keys, incremental.reading_key(cfg, source, registry), source, force=force,
                                  earlier=registry.earlier_versions, retyped=retyped)
    texts = text_columns(registry)
    rows_done = spark.sparkContext.accumulator(0)

    def compute(src: Source, reg: LFRegistry, **masks: Any) -> DataFrame:
        return compute_votes(src, reg, batch_size=cfg.apply.batch_size, lf_timeout_seconds=cfg.apply.lf_timeout_seconds,
                             rows_done=rows_done, **masks).withColumn("run_id", F.lit(run_id))

    changes, hashes_version, detect_seconds = None, None, 0.0
    hashes_needed = not incremental.uses_delta_history(cfg, source)
    needed = required_columns(registry.lfs)
    # Check only the changed rows when the previous run checked the others: same LF text columns,
    # and the source unchanged or a Delta table on the local path (whose added files hold every
    # changed row). Otherwise check the whole source first, so a malformed file is named before
    # the change detection reads it.
    narrow = not plan.full and set(texts) <= set(prior.text_columns) and (
        not plan.source_changed or (not hashes_needed and isinstance(io, delta_io.LocalDeltaIO))
        or (hashes_needed and incremental.appends_only(cfg, source, prior, io)))
    n_rows = copies_dropped = None
    if not narrow:
        describe(spark, "apply", f"check source {source.description}")
        counted = check_source_counts(source, text_columns=texts, required_columns=needed, lfs=registry.lfs)
        n_rows, copies_dropped = counted.rows, counted.copies_dropped
    if not plan.full and plan.source_changed:
        describe(spark, "apply", f"find rows that changed in {source.description}")
        detect_started = time.perf_counter()
        found = incremental.find_row_changes(spark, cfg, source, prior, io)
        detect_seconds = time.perf_counter() - detect_started
        if isinstance(found, str):
            plan = replace(plan, applied=registry.names, reused=(), full=True, reason=found)
        else:
            changes = found
            log.info("apply: %d row(s) new or changed, %d gone (%s)", changes.n_reapply, changes.n_gone, changes.method)
    if n_rows is None and (plan.full or (changes is not None and changes.rows is None)):
        describe(spark, "apply", f"check source {source.description}")
        counted = check_source_counts(source, text_columns=texts, required_columns=needed, lfs=registry.lfs)
        n_rows, copies_dropped = counted.rows, counted.copies_dropped
    elif n_rows is None:  # the rows the run that wrote the votes checked are checked; check only what changed
        check_columns(source, needed, registry.lfs)
        n_rows = prior.n_rows
        if not plan.source_changed:  # the same rows: the same copies dropped
            copies_dropped = prior.duplicate_rows_dropped
        if changes is not None:
            if changes.n_reapply:
                check_source(replace(source, df=changes.rows), text_columns=texts, required_columns=needed,
                             lfs=registry.lfs)
            row_changes.check_new_ids(spark, source, changes, io)
            n_rows = prior.n_rows + changes.n_new - changes.n_gone
            if n_rows <= 0:
                raise InputDataError(f"source {source.description} has no rows; point source.path at a table with data")
    lf_sources.check_models(source, registry.lfs)
    log.info("apply: %d rows from %s, %d LFs", n_rows, source.description, len(registry))
    if not plan.full and not plan.source_changed and prior is not None:
        hashes_version, hashes_needed = prior.row_hashes_version, False
    elif hashes_needed and _hashes_still_current(cfg, io, prior, source, registry):
        # A full apply (--force, every LF changed) of the rows the stored hashes are of: they stay (a drill, session
        # 23: every full apply wrote the whole hashes table again, a new version as big as the votes).
        hashes_version, hashes_needed = prior.row_hashes_version, False
        log.info("apply: the source is unchanged since the stored row hashes (v%s); keeping them", hashes_version)
    # Partitioned by LF: an incremental apply replaces the partitions of the LFs it reapplies.
    how: dict[str, Any] = {"mode": "overwrite", "overwrite_schema": True, "partition_by": ["lf_name"]}
    kept_files: list[str] = []
    masks_folder = carried_masks = drop = None
    grouped = False  # the row masks are built by grouping the new votes by row (jobs.grouped_masks)
    carried: dict[str, LFApplyStats] = {}
    if plan.full:
        log.info("apply: all %d LFs on all %d rows (%s)", len(registry), n_rows, plan.reason)
        # The LFs run in the tasks that write the votes: one Python pass, no round trip through the JVM.
        masks_folder = (_masks_folder(spark, cfg, run_id, registry, task_masks)
                        if row_masks or task_masks is not None else None)
        votes, fn, schema = vote_function(source, registry, batch_size=cfg.apply.batch_size,
                                          lf_timeout_seconds=cfg.apply.lf_timeout_seconds, rows_done=rows_done,
                                          run_id=run_id, masks_folder=masks_folder, mask_tasks=task_masks)
        how["transform"] = (fn, schema)
        applied_rows = n_rows
    else:
        # The unchanged LFs keep their votes and still run on the new or changed rows.
        on_rows = changes.n_reapply if changes is not None else 0
        what = [f"running {few_names(plan.applied)} on every row"] if plan.applied else []
        reused = few_names(plan.reused)
        what.append(f"running {reused} on the {on_rows:,} new or changed row(s) only" if on_rows
                    else f"keeping the votes of {reused}")
        if plan.removed:
            what.append(f"dropping {few_names(plan.removed)}")
        log.info("apply: incremental, %s: %s", plan.reason, "; ".join(what))
        if row_masks or task_masks is not None:  # as a full apply's: the previous masks carried, or the votes grouped
            masks_folder = _masks_folder(spark, cfg, run_id, registry, task_masks)
            carried_masks = masks_folder and incremental_masks.previous_folder(prior, registry.names, plan,
                                                                               source.gold_column, task_masks)
            grouped = masks_folder is not None and not carried_masks

        def masked(reg: LFRegistry) -> dict[str, Any]:
            """The row masks go with the pass that runs every LF (on the reapplied rows), in registry order, when
            the other rows' are carried (else every row's are grouped from the votes: jobs.grouped_masks)."""
            ok = masks_folder is not None and not grouped and reg.names == registry.names
            return {"masks_folder": masks_folder, "mask_tasks": task_masks} if ok else {}

        commit = incremental.build_commit(
            spark, plan, source, registry, changes, votes_path=votes_path, io=io,
            compute=lambda src, reg: compute(src, reg, **masked(reg)),
            columns=votes_table_schema(pa.string()).names,
            vote_function=lambda src, reg: vote_function(
                src, reg, batch_size=cfg.apply.batch_size, lf_timeout_seconds=cfg.apply.lf_timeout_seconds,
                rows_done=rows_done, run_id=run_id, **masked(reg)))
        votes, kept_files = commit.df, list(commit.kept_files)
        drop = commit.dropped, commit.dropped_range  # the masks' carry leaves out the same rows
        # LFs whose votes all stay keep their counts: only the files written now are counted for them.
        carried = incremental.carried_stats(prior.lfs, commit, cfg.apply.error_samples)
        counted = [f for f, name in zip(commit.kept_files, commit.kept_lfs) if name not in carried]
        if commit.mode == "append":
            how = {"mode": "append", "remove_files": commit.remove_files}
            if commit.transform is not None:
                how["transform"] = commit.transform
        applied_rows = n_rows if plan.applied else (changes.n_reapply if changes is not None else 0)
    holder: dict[str, Any] = {}
    # Filled by validate() once the per-LF counts are known; write_table reads it at commit time.
    commit_metadata: dict[str, str] = {"lakelabel.run_id": run_id}

    def validate(written: list[str]) -> None:
        describe(spark, "apply", "count votes and errors per LF")
        files = written + kept_files  # the whole new table
        stats, out_of_space = _lf_stats_from_files(spark, written + (counted if carried else kept_files), registry,
                                                   n_rows, cfg.apply.error_samples, carried=carried)
        holder["stats"] = stats
        for lf in stats:
            if out_of_space.get(lf.name):
                samples = [s for s in lf.error_samples if s["kind"] == "out_of_space"]
                unaligned = next((s for s in samples if NOT_ONE_VOTE_PER_ROW.match(s["error"])), None)
                if unaligned:  # the cause is the result's length or index, not a value: say that first
                    raise LFError(
                        f"LF {lf.name!r} did not return one vote per row: it {unaligned['error']} (batch of row id "
                        f"{unaligned['row_id']}; {out_of_space[lf.name]} row(s) got no vote)"
                    )
                sample = samples[0] if samples else None
                where = f" (e.g. row id {sample['row_id']}: {sample['error']})" if sample else ""
                raise LFError(
                    f"LF {lf.name!r} returned a value outside the label space on {out_of_space[lf.name]} row(s){where}; "
                    f"fix the LF: it returns one class id or ABSTAIN (-1) per row"
                )
        _check_error_budget(stats, n_rows, cfg.apply.max_error_rate)
        _check_coverage(spark, files, stats, n_rows, cfg.apply.min_coverage, source.description)
        if grouped:  # once the votes passed their checks: a refused apply does not group them
            describe(spark, "apply", "group the votes by row into the row masks")
            grouped_masks.write_into(read_votes_files(spark, files), source, registry.names, label_space,
                                     masks_folder, task_masks, lakehouse=cfg.lakehouse,
                                     n_votes=sum(lf.votes for lf in stats))
        masks = {}
        if masks_folder is not None and apply_masks.complete(masks_folder, n_rows):
            masks = apply_masks.summary(masks_folder, n_rows, source.gold_column, task_masks)
        holder["row_masks"] = masks
        # Its seconds: the apply up to its commit (the LF pass is done here); the summary's include the commit.
        commit_metadata[VOTES_META_KEY] = replace(pending, lfs=stats, row_masks=masks,
                                                  seconds=round(time.perf_counter() - started, 3)).to_json()
        if hashes_needed:
            # A non-Delta source: store its row hashes for the next run before the votes commit names them, and
            # only once the votes passed their checks, so a refused apply commits nothing.
            new = (local_path_missing(hashes_path) is not None if is_local_path(hashes_path)
                   else not io.table_exists(hashes_path))
            hashes["before"] = None if new else io.table_version(hashes_path)
            hashes["written"] = True  # from here a failure puts them back (a no-op when they did not commit)
            version = row_changes.write_row_hashes(
                source, hashes_path, io, run_id,
                appended=changes.rows if changes is not None and not plan.full else None)
            holder["row_hashes_version"] = version
            commit_metadata[VOTES_META_KEY] = replace(
                pending, lfs=stats, row_masks=masks, row_hashes_version=version,
                seconds=round(time.perf_counter() - started, 3)).to_json()
        # Last, after every read of the source: votes of a source rewritten meanwhile are not committed.
        check_source_unchanged(source)

    # The row hashes this apply writes (in validate), put back if the votes fail after them.
    hashes_path = incremental.row_hashes_path(cfg) if hashes_needed else None
    hashes: dict[str, Any] = {"before": None, "written": False}
    label_space = tuple(registry.label_space)
    pending = ApplyResult(
        run_id=run_id,
        votes_table=votes_path,
        votes_version=None,
        source_path=source.info.path,
        source_format=source.info.format,
        source_version=source.info.version,
        fingerprint=fingerprint,
        source_fingerprint=source.info.fingerprint,
        n_rows=n_rows,
        duplicate_rows_dropped=copies_dropped,
        label_space=label_space,
        lfs=(),
        skipped=False,
        seconds=0.0,
        lf_keys=keys,
        reading=incremental.reading_key(cfg, source, registry),
        applied_lfs=tuple(plan.applied),
        reused_lfs=tuple(plan.reused),
        applied_rows=applied_rows,
        row_changes={"method": "full apply: " + plan.reason} if plan.full else {
            "method": changes.method if changes is not None else "source unchanged",
            "reapplied": changes.n_reapply if changes is not None else 0,
            "gone": changes.n_gone if changes is not None else 0,
            "removed_lfs": list(plan.removed),
            "detect_seconds": round(detect_seconds, 3),
        },
        row_hashes_version=hashes_version,
        text_columns=tuple(texts),
    )

    describe(spark, "apply", f"{len(registry)} LFs over {n_rows} rows")
    committed = False
    # Masks folders of applies killed before they could delete theirs (kill -9): the current votes' stay.
    apply_masks.sweep(cfg.lakehouse, [prior.row_masks.get("path") if prior is not None else None])
    try:
        apply_masks.create(masks_folder)  # here, so an interrupt before the write leaves no empty folder
        if carried_masks:
            describe(spark, "apply", "carry the row masks of the unchanged rows")
            incremental_masks.carry_into(spark, carried_masks, masks_folder, *drop, lakehouse=cfg.lakehouse,
                                         full_files=incremental_masks.full_apply_files(source.df))
        try:
            with Progress(spark, "apply", max(applied_rows, 1), rows_done):
                result = io.write_table(
                    votes,
                    votes_path,
                    commit_metadata=commit_metadata,
                    validate=validate,
                    description=f"lakelabel apply: write votes to {votes_path}",
                    **how,
                )
        except delta_io.DeltaWriteError as err:
            _raise_sql_lf_at_fault(source, registry, err)
            _raise_out_of_memory(cfg, err)
            raise
        committed = True
        if not result.skipped:
            signals.note_commit(f"votes {votes_path} v{result.version}")
    finally:
        if changes is not None:
            changes.release()
        if masks_folder is not None and not (committed and holder.get("row_masks")):
            apply_masks.remove(masks_folder, cfg.lakehouse)
        if not (committed and holder.get("row_masks") and replaced_masks is not None):
            # A run that may put the votes back holds its masks until retire_masks: killed after putting them
            # back, it leaves a folder no commit names, which the next apply's sweep deletes.
            apply_masks.release(masks_folder)
        if hashes["written"] and not committed:  # removed again after a failed first apply
            how_ended = "was interrupted" if signals.stopped_by_signal() else "failed"
            signals.put_back(incremental.row_hashes_named(cfg, io), lambda: io.restore_table(
                hashes_path, hashes["before"], reason=f"apply {run_id} {how_ended}"))  # the apply's error stays
    if committed and prior is not None and prior.row_masks.get("path"):  # the votes they belonged to are replaced
        if replaced_masks is None:
            apply_masks.remove(prior.row_masks["path"], cfg.lakehouse)
        else:
            replaced_masks.append(prior.row_masks["path"])
            # Locked until retire_masks: if this process is killed first, the votes stay this apply's and the
            # next apply's sweep deletes the folder of the votes replaced (unless they were put back).
            apply_masks.hold(prior.row_masks["path"], cfg.lakehouse)
    seconds = time.perf_counter() - started
    final = replace(pending, lfs=holder["stats"], votes_version=result.version, seconds=seconds,
                    row_masks=holder.get("row_masks", {}),
                    row_hashes_version=holder.get("row_hashes_version", pending.row_hashes_version))
    total_errors = sum(lf.errors for lf in final.lfs)
    kept = f" and kept {len(kept_files)} file(s) of the previous version" if kept_files else ""
    log.info("apply: wrote %d vote row(s)%s to %s v%s in %.1fs (%d LF error(s) over the table's rows)",
             result.num_records, kept, votes_path, result.version, seconds, total_errors)
    every = final.row_changes.get("method", "").startswith("full") or final.row_changes.get("reapplied")
    ran = None if every else set(final.applied_lfs)  # new rows: every LF ran on them
    _warn_about_lfs([lf for lf in final.lfs if ran is None or lf.name in ran], final.n_rows, cfg.apply.max_error_rate)
    return final


# Spark's data exceptions (SQLSTATE class 22): a value an expression cannot take, raised while the rows are read.
_SQL_DATA_ERROR = re.compile(r"SQLSTATE: 22|CAST_INVALID_INPUT|DIVIDE_BY_ZERO|ARITHMETIC_OVERFLOW|INVALID_FORMAT")


def _raise_sql_lf_at_fault(source: Source, registry: LFRegistry, err: Exception) -> None:
    """When a write failed on a value a SQL LF's condition cannot handle ('phone' cast to a number), name that LF
    and its condition: Spark's message names neither. Each SQL LF is evaluated alone over the source to find it."""
    sql = [lf for lf in registry.lfs if lf.kind == "sql"]
    if not sql or not _SQL_DATA_ERROR.search(str(err)):
        return
    for lf in sql:
        try:
            source.df.select(F.sum(lf.spark_column())).collect()
        except Exception as lf_err:  # noqa: BLE001 - Spark's own wording, shortened to its first line
            reason = str(lf_err).strip().splitlines()[0]
            raise InputDataError(
                f"SQL LF {lf.name!r} fails on the source's values: {reason}; its condition is "
                f"{lf.spec['condition']!r}: compare a column with a value of its type (a text column with a quoted "
                f"value, channel = '1'), or use try_cast(...) to get NULL (an abstain) where a value does not convert"
            ) from None


# A Python worker's MemoryError (numpy's _ArrayMemoryError too) as the last line of the traceback Spark wraps; not
# the JVM's java.lang.OutOfMemoryError.
_OUT_OF_MEMORY = re.compile(r"^\s*(?:[\w.]*\.)?(?:_Array)?MemoryError\b.*$", re.M)


def _raise_out_of_memory(cfg: PipelineConfig, err: Exception) -> None:
    """When a Python worker ran out of memory evaluating the LFs (a batch of long texts under a memory limit), name
    the setting that bounds the batch: Spark's words end in "Please see the stack trace below"."""
    found = _OUT_OF_MEMORY.findall(str(err.__cause__ or err))
    if not found:
        return
    raise InputDataError(
        f"{err} (a Python worker ran out of memory applying the LFs to a batch of up to apply.batch_size="
        f"{cfg.apply.batch_size} rows: {found[-1].strip()[:200]}); lower apply.batch_size (for long texts, tens of KB "
        f"a row, a few hundred) or give the Python workers more memory (spark.executor.pyspark.memory)"
    ) from None


def _hashes_at_latest(cfg: PipelineConfig, io: Any, prior: ApplyResult) -> ApplyResult:
    """``prior`` with its row hashes' version moved to the hashes table's latest when only data-neutral commits
    (a compaction: jobs.compaction) followed it: the same rows, in files a VACUUM after the compaction keeps (a
    review: a VACUUM after one left the version the record names without files, and every later run exited 2)."""
    path = incremental.row_hashes_path(cfg)
    if prior.row_hashes_version is None or not io.table_exists(path):
        return prior
    latest = io.table_version(path)
    if latest is None or latest <= prior.row_hashes_version or not io.unchanged_since(path, prior.row_hashes_version):
        return prior
    return replace(prior, row_hashes_version=latest)


def _hashes_still_current(cfg: PipelineConfig, io: Any, prior: ApplyResult | None, source: Source,
                          registry: LFRegistry) -> bool:
    """Whether the row hashes the previous apply stored are of this source's rows, read this way."""
    if prior is None or prior.row_hashes_version is None or not prior.source_fingerprint:
        return False
    if prior.source_fingerprint != source.info.fingerprint or prior.reading != incremental.reading_key(
            cfg, source, registry):
        return False
    path = incremental.row_hashes_path(cfg)
    return io.table_exists(path) and io.unchanged_since(path, prior.row_hashes_version)


def _warn_about_lfs(stats: Sequence[LFApplyStats], n_rows: int, max_error_rate: float) -> None:
    """Warn about what the votes table holds that a user would want to know before trusting the labels:
    LFs that never vote, and LFs that raised on some rows (under the error budget, so the job went on).
    Only the LFs this apply ran (all of them when it ran on any row): reused votes were warned about
    when they were made."""
    silent = [lf.name for lf in stats if lf.votes == 0 and lf.errors == 0]
    if silent:
        log.warning("apply: %d LF(s) voted on none of the %s rows: %s; check what they match (a keyword list "
                    "written as one string, a field that is always empty, a column LF's mapping keys against the "
                    "column's values) with `lakelabel analyze`",
                    len(silent), f"{n_rows:,}", ", ".join(silent))
    for lf in stats:
        if lf.errors:
            sample = lf.error_samples[0] if lf.error_samples else {"row_id": "?", "error": "?"}
            log.warning("apply: LF %r raised on %s of %s rows (%s, within apply.max_error_rate=%.1f%%): it abstains "
                        "there; e.g. row id %s: %s", lf.name, f"{lf.errors:,}", f"{n_rows:,}",
                        _share_below(lf.errors, n_rows), 100 * max_error_rate, sample["row_id"], sample["error"])


def retire_masks(cfg: PipelineConfig, io: Any, applied: ApplyResult | None, replaced: list[str]) -> None:
    """At the end of a run whose apply left ``replaced`` (the masks of the votes it replaced) to its
    caller: delete those and this apply's own masks, except the folder the votes commit that stands
    now names (this run's if it succeeded, the earlier one's if the votes were put back, whichever
    stayed if putting them back failed)."""
    folders = [*replaced, *([applied.row_masks.get("path")] if applied is not None and not applied.skipped else [])]
    folders = [f for f in folders if f]
    if not folders:
        return
    try:
        votes_path = cfg.table_path("votes")
        meta = io.read_metadata(votes_path) if io.table_exists(votes_path) else {}
        # As the records of the folders above were read: rebased when the lakehouse moved (apply_record.located).
        current = (located(ApplyResult.from_json(meta[VOTES_META_KEY]), votes_path, str(cfg.lakehouse_path))
                   .row_masks.get("path") if VOTES_META_KEY in meta else None)
    except Exception as err:  # noqa: BLE001 - the run's own outcome is what to report; keep the folders
        log.warning("apply: row masks %s kept: cannot read which the votes table names (%s)", ", ".join(folders), err)
        for folder in folders:
            apply_masks.release(folder)
        return
    for folder in folders:
        if folder != current:
            apply_masks.remove(folder, cfg.lakehouse)
        apply_masks.release(folder)


def _masks_folder(spark: SparkSession, cfg: PipelineConfig, run_id: str, registry: LFRegistry,
                  tasks: Any = None) -> str | None:  # fmt: skip
    """A new folder name for the apply's row masks (:mod:`jobs.apply_masks`), or None when they are not
    written: more codes than one mask holds (a task's, with ``tasks``), or a non-local master."""
    fits = tasks.fits() if tasks is not None else apply_masks.fits(len(registry), registry.cardinality)
    return apply_masks.folder_for(spark, run_dir(cfg.lakehouse, run_id), fits)


def stage(spark: SparkSession, cfg: PipelineConfig, run_id: str, force: bool = False,
          registry: LFRegistry | None = None, task_set: TaskSet | None = None) -> Outcome:
    """The apply stage as a job: run it and describe what it did (:mod:`jobs.stages`).

    With several tasks (``task_set``, built here when not given), the row masks are each task's
    (:mod:`jobs.task_masks`), as ``lakelabel run`` writes them: the multi-task run after this apply reads them
    (and its next incremental apply carries them) instead of grouping the votes by row again.
    """
    masks = None
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    if task_set is None and is_multitask(cfg):
        task_set = build_task_set(cfg)
    source = load_source(spark, cfg.source, io=io)
    if task_set is not None:
        registry = task_set.registry
        masks = task_masks.task_masks(task_set, source)
    applied = run(spark, cfg, run_id=run_id, force=force, registry=registry, source=source, task_masks=masks)
    # Once the votes are committed, before the stage reports success (jobs.compaction); the summary's votes
    # version stays the apply's commit's. The stages after it read the latest, compacted one: the same votes.
    compacted = compaction.compact_vote_tables(cfg, io, source.df)
    lfs = applied.lfs
    return Outcome(
        skipped=applied.skipped,
        seconds=applied.seconds,
        tables=votes_table(applied),
        counts={"rows": applied.n_rows, "lfs": len(lfs), "votes": sum(lf.votes for lf in lfs),
                "errors": sum(lf.errors for lf in lfs)},
        details={
            "source": {"path": applied.source_path, "format": applied.source_format, "version": applied.source_version},
            "lfs": lf_summaries(applied),
            "fingerprint": applied.fingerprint,
            "applied_lfs": list(applied.applied_lfs),
            "reused_lfs": list(applied.reused_lfs),
            "applied_rows": applied.applied_rows,
            "row_changes": applied.row_changes,
            **({"compaction": compacted} if compacted else {}),
        },
        # A skipped apply logs too: its votes are this run's inputs (a stage DAG after a run that applied them).
        log=lambda: tracking.log_apply(cfg, applied),
    )  # fmt: skip


def _force_option(p: Any) -> None:
    p.add_argument("--force", action="store_true", help="recompute votes even when they are up to date")


def check_lfs(args: Any, cfg: PipelineConfig) -> None:
    """Build the LF registry before Spark starts, so declared LFs, lexicon files and model URIs fail
    first, and check that a local source has the columns the LFs read. With several tasks, ``args.task_set``
    holds them (None for one task)."""
    args.task_set = build_task_set(cfg) if is_multitask(cfg) else None
    args.registry = build_registry(cfg, args.task_set)
    if cfg.source is not None:
        precheck_lf_columns(cfg.source, args.registry.lfs)
        lf_sources.precheck_lf_tables(args.registry.lfs, cfg.source.id_column)


COMMAND = command.Command(
    logs_to_mlflow=True, writes=("votes",),
    name="apply", help="apply the LFs and write the votes table", add_arguments=_force_option, stage_summary=True,
    precheck=check_lfs, reads_source=True,
    run=lambda args, cfg, run_id, spark: finish("apply", cfg, run_id,
                                                stage(spark, cfg, run_id, args.force, registry=args.registry,
                                                      task_set=args.task_set)),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
