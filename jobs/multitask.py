"""The pipeline for several tasks: one apply pass, one grouping of the votes, one labels commit.

``lakelabel run`` on a config with ``tasks:`` or ``multi_label:`` (README "Several tasks at once")
comes here. The votes of every task's LFs go to the one votes table (LF names are unique across
tasks, so a vote's task is its LF's). A full apply also writes one row per source row with each
task's vote bitmask (:mod:`jobs.task_masks`), as does an incremental one (carried, :mod:`jobs.incremental_masks`;
grouped from the votes when it changes the LFs, :mod:`jobs.grouped_masks`); without them (a task too
wide for a mask, a masks folder gone) the votes are grouped once by row over every LF of the run (:func:`vote_rows`,
persisted). One Spark job counts each task's vote patterns from those rows
(:func:`aggregate_tasks`), and each task's gold table (``<tables.gold>_<task>``) is read as a
single-task run reads its one (:mod:`jobs.task_gold`); each task's label model is fitted on the
driver; one more Spark job scores every task and writes all labels in one Delta commit
(:mod:`jobs.multitask_labels`: ``<tables.labels>_tasks``, one struct column per task). MLflow: one
run, metric names prefixed ``<task>.``, one logged label model per task.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_type

from jobs import aggregate, apply_lfs, compaction, delta_io, fit_label_model, incremental, multitask_labels, task_gold
from jobs import task_masks
from jobs.aggregate import AggregateResult
from jobs.apply_masks import MASK
from jobs.apply_record import ApplyResult, lf_info
from jobs.changes.drift import check as drift_check
from jobs.changes.runs import previous_run
from jobs.delta_io.sources import Source, check_source, gold_ids, load_source
from jobs.runtime import lf_sources, signals, tracking
from jobs.runtime.config import PipelineConfig
from jobs.runtime.metrics import gold_metrics, holdout_line
from jobs.runtime.runs import check_run_id, run_dir, write_json
from jobs.runtime.session import clear_description, describe
from jobs.tasks import Task, TaskSet, build_task_set, task_gold_keys, task_source
from jobs.vote_groups import group_codes, partitions_for, vote_codes
from labelmodel import MajorityLabelVoter
from lf_library.apply import required_columns, vote_dtype

log = logging.getLogger(__name__)

__all__ = ["run", "task_applied", "vote_rows", "count_patterns", "aggregate_tasks", "task_rows", "task_patterns"]


def task_applied(applied: ApplyResult, task: Task) -> ApplyResult:
    """The apply result as one task sees it: its LFs and its label space."""
    names = set(task.lf_names)
    return replace(applied, label_space=tuple(task.label_space), lfs=tuple(lf for lf in applied.lfs if lf.name in names))


def vote_rows(spark: SparkSession, applied: ApplyResult, task_set: TaskSet, source: Source, io: Any) -> DataFrame:
    """``row_id, pattern array<int>[, golds array<int>]``: every source row with the votes of every task.

    One grouping of the votes by row over every LF of the run: codes ``lf_index * K + class``,
    ``lf_index`` in the run's LF order (``task_set.registry``), ``K`` its largest class count.
    ``golds`` (one gold class id per task, -1 if none) only when some task has a gold column.
    """
    shared = source
    tasks = task_set.tasks
    for t in tasks:
        shared = replace(shared, df=task_source(shared, t).df)
    sources = {t.name: replace(task_source(shared, t), df=shared.df) for t in tasks}
    extra = []
    if any(sources[t.name].gold_column for t in tasks):
        golds = [gold_ids(sources[t.name], tuple(t.label_space)) if sources[t.name].gold_column
                 else F.lit(-1).cast("int") for t in tasks]  # fmt: skip
        extra = [F.array(*golds).alias("golds")]
    ids = shared.df.select(F.col(source.id_column).alias("row_id"), *extra)
    votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
    names, big_k = task_set.registry.names, task_set.registry.cardinality
    mine = set(names)
    return group_codes(vote_codes(votes, names, big_k), ids, partitions_for(spark, sum(lf.votes for lf in applied.lfs if lf.name in mine)))


def _layout(task_set: TaskSet) -> list[tuple[np.ndarray, int]]:
    """Per task: the indices of its LFs in the run's LF order, and its class count."""
    where = {name: i for i, name in enumerate(task_set.registry.names)}
    return [(np.array([where[n] for n in t.lf_names], dtype=np.int64), len(t.label_space)) for t in task_set.tasks]


def count_patterns(rows: DataFrame, task_set: TaskSet) -> DataFrame:
    """``task int, pattern binary, gold int, n long``: source rows per (task, vote pattern, gold class).

    ``pattern`` is the task's row of the dense vote matrix (one byte per LF, int16 past 127
    classes; -1 abstain), all-abstain rows included. Counted in Python per Spark partition
    (numpy ``unique`` over each batch's dense votes), then summed over partitions by Spark.
    """
    layout = _layout(task_set)
    n_lfs, k = len(task_set.registry), task_set.registry.cardinality
    dtype = vote_dtype(k)
    with_gold = "golds" in rows.columns
    schema = "task int, pattern binary, gold int, n long"

    def count_partition(batches):
        found: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in layout]
        for batch in batches:
            if batch.num_rows == 0:
                continue
            L = multitask_labels.dense_votes(batch.column("pattern"), n_lfs, k)
            golds = None
            if with_gold:
                flat = batch.column("golds").flatten().to_numpy(zero_copy_only=False)
                golds = flat.reshape(batch.num_rows, len(layout)).astype(dtype)
            for t, (cols, kt) in enumerate(layout):
                gold = golds[:, t:t + 1] if golds is not None else np.full((batch.num_rows, 1), -1, dtype=dtype)
                # Distinct (votes, gold) lines through integer keys (multitask_labels.distinct_rows), then as bytes.
                lines, inverse = multitask_labels.distinct_rows(np.hstack([L[:, cols], gold]), kt)
                n = np.bincount(inverse, minlength=len(lines))
                distinct = np.ascontiguousarray(lines).view(np.dtype((np.void, lines.dtype.itemsize * lines.shape[1])))
                found[t].append((distinct.ravel(), n))
        for t, (cols, _) in enumerate(layout):
            if not found[t]:
                continue
            distinct, inverse = np.unique(np.concatenate([d for d, _ in found[t]]), return_inverse=True)
            n = np.bincount(inverse.ravel(), weights=np.concatenate([c for _, c in found[t]])).astype(np.int64)
            lines = np.frombuffer(distinct.tobytes(), dtype=dtype).reshape(len(distinct), len(cols) + 1)
            patterns = pa.array([bytes(r) for r in np.ascontiguousarray(lines[:, :-1])], pa.binary())
            yield pa.RecordBatch.from_arrays(
                [pa.array(np.full(len(distinct), t, dtype=np.int32)), patterns,
                 pa.array(lines[:, -1].astype(np.int32)), pa.array(n)],
                names=["task", "pattern", "gold", "n"])  # fmt: skip

    counted = rows.select("pattern", *(["golds"] if with_gold else [])).mapInArrow(count_partition, schema)
    return counted.groupBy("task", "pattern", "gold").agg(F.sum("n").cast("long").alias("n"))


def task_rows(rows: DataFrame, task_set: TaskSet, index: int) -> DataFrame:
    """:func:`jobs.aggregate.pattern_frame` rows of task ``index`` (its own LF indices and class ids)."""
    cols, kt = _layout(task_set)[index]
    big_k = task_set.registry.cardinality
    local = "map(" + ", ".join(f"{int(g)}L, {j}" for j, g in enumerate(cols)) + ")"  # run's LF index -> task's
    pattern = F.expr(f"array_sort(transform(filter(pattern, c -> map_contains_key({local}, div(c, {big_k}))), "
                     f"c -> CAST(element_at({local}, div(c, {big_k})) * {kt} + c % {big_k} AS INT)))")  # fmt: skip
    gold = F.element_at("golds", index + 1) if "golds" in rows.columns else F.lit(-1)
    return rows.select("row_id", pattern.alias("pattern"), gold.cast("int").alias("gold"))


def task_patterns(rows: DataFrame, task_set: TaskSet, index: int) -> DataFrame:
    """``row_id, pattern`` of task ``index`` (its own LF indices and class ids) from the rows a run
    aggregated: the apply pass's per-task masks (:func:`jobs.task_masks.stored`) or :func:`vote_rows`."""
    if not task_masks.is_masks(rows):
        return task_rows(rows, task_set, index).select("row_id", "pattern")
    task = task_set.tasks[index]
    mask = task_masks.task_frame(rows, index)
    return mask.select("row_id", aggregate.decode_mask(MASK, len(task.lf_names) * len(task.label_space))
                       .alias("pattern"))  # fmt: skip


def aggregate_tasks(cfg: PipelineConfig, rows: DataFrame, task_set: TaskSet) -> dict[str, AggregateResult]:
    """Every task's :class:`~jobs.aggregate.AggregateResult` from one Spark job over :func:`vote_rows`
    (or the apply pass's per-task masks: :func:`jobs.task_masks.aggregate_masks`).

    Past ``aggregate.max_patterns`` (task, pattern, gold) groups per task in all, each task is
    aggregated on its own by :func:`jobs.aggregate.aggregate_patterns` (overlap moments).
    """
    if task_masks.is_masks(rows):
        return task_masks.aggregate_masks(cfg, rows, task_set)
    started = time.perf_counter()
    tasks = task_set.tasks
    with_gold = "golds" in rows.columns
    golds = [with_gold and t.gold_column is not None for t in tasks]
    k_max = max(len(t.label_space) for t in tasks)
    limit = max(cfg.aggregate.max_patterns, 0) * (k_max + 1) * len(tasks)
    head = count_patterns(rows, task_set).limit(limit + 1).collect() if limit else []
    if not limit or len(head) > limit:
        log.info("aggregate: more than %d (task, pattern, gold) groups; aggregating each task on its own", limit)
        return {t.name: aggregate.aggregate_patterns(task_rows(rows, task_set, i), t.lf_names, len(t.label_space),
                                                     max_patterns=cfg.aggregate.max_patterns, with_gold=golds[i])
                for i, t in enumerate(tasks)}  # fmt: skip
    dtype = vote_dtype(task_set.registry.cardinality)
    out: dict[str, AggregateResult] = {}
    for i, t in enumerate(tasks):
        mine = [r for r in head if r["task"] == i]
        lines = np.frombuffer(b"".join(r["pattern"] for r in mine), dtype=dtype).reshape(len(mine), len(t.lf_names))
        gold = np.fromiter((r["gold"] for r in mine), dtype=np.int64, count=len(mine))
        n = np.fromiter((r["n"] for r in mine), dtype=np.int64, count=len(mine))
        out[t.name] = task_masks.task_stats(lines.astype(np.int16), gold, n, t, golds[i], cfg.aggregate.max_patterns,
                                            started)  # fmt: skip
    return out


def check_holdout(spark: SparkSession, cfg: PipelineConfig, task_set: TaskSet, io: Any) -> None:
    """Check the ``evaluation:`` source (:func:`check_source`, with every task's LFs) before apply, when a
    task will be scored on it: a duplicate id fails in seconds, not after apply, aggregate and fit."""
    ev = cfg.evaluation
    scored = [task for task in task_set.tasks if task.gold_column]  # the tasks evaluate_holdout scores
    if ev is None or not scored:
        return
    # Each task's own gold column is its evaluation gold (evaluation.gold_column is not read here).
    source = load_source(spark, replace(ev, gold_column=None), role="evaluation", io=io)
    describe(spark, "evaluate", f"check held-out {source.description}")
    lfs = list({lf.name: lf for task in scored for lf in task.registry.lfs}.values())
    check_source(source, text_columns=sorted({c for task in scored for c in apply_lfs.text_columns(task.registry)}),
                 required_columns=required_columns(lfs), lfs=lfs)
    lf_sources.check_models(source, lfs)  # as the single-task run: a model that cannot score fails here, in seconds


def evaluate_holdout(spark: SparkSession, cfg: PipelineConfig, task: Task, model: Any, io: Any) -> dict[str, float]:
    """``task``'s label model scored on ``evaluation:`` with the task's gold column (as the pipeline does)."""
    ev = cfg.evaluation
    if ev is None or not task.gold_column:
        return {}
    source = load_source(spark, replace(ev, gold_column=task.gold_column), role="evaluation", io=io)
    source = task_source(source, task)
    describe(spark, "evaluate", f"task {task.name}: held-out {source.description}")
    # Its ids and the columns every task's LFs read were checked before apply (check_holdout).
    votes = apply_lfs.compute_votes(source, task.registry, batch_size=cfg.apply.batch_size)
    k = len(task.label_space)
    rows = aggregate.pattern_frame(votes, aggregate.source_ids(source, task.label_space), task.lf_names, k)
    agg = aggregate.aggregate_patterns(rows, task.lf_names, k, max_patterns=max(cfg.aggregate.max_patterns, 1),
                                       with_gold=True)
    if agg.gold_counts is None:
        return {}
    n_gold = int(agg.gold_counts.sum())
    aggregate.warn_unmatched_holdout_gold(source, task.label_space, n_gold, agg.stats.n_rows,
                                          key=task_gold_keys(cfg).get(task.gold_column))
    if not n_gold:
        return {}
    mv = MajorityLabelVoter(cardinality=k).fit_from_stats(agg.stats)
    metrics = {"eval_rows": float(agg.gold_counts.sum()), "eval_coverage": agg.stats.n_covered / max(agg.stats.n_rows, 1),
               **gold_metrics(model, mv, agg.stats.patterns, agg.gold_counts, prefix="eval_")}  # fmt: skip
    log.info("evaluate: task %s: %s", task.name, holdout_line(metrics))
    return metrics


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str, force: bool = False,
        report: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run every task of ``cfg``; return the run summary (with a ``tasks`` section, one entry per task).

    Tables move only when their step commits; when a later step fails, the votes and the
    labels table are put back to their versions before the run. With ``cfg.report.enabled``,
    ``report`` (:func:`jobs.report.run`, passed in by :mod:`jobs.pipeline`: the report imports the
    task views, which import this module) writes every task's analysis and page before the run ends.
    """
    run_id = check_run_id(run_id)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    task_set = build_task_set(cfg)
    tasks = task_set.tasks
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    source = load_source(spark, cfg.source, io=io)
    check_holdout(spark, cfg, task_set, io)
    votes_path = cfg.table_path("votes")
    labels_path = multitask_labels.labels_path(cfg)
    before = {path: io.table_version(path) for path in (votes_path, labels_path, incremental.row_hashes_path(cfg))}
    mlflow_run_id = tracking.start_run(cfg, run_id).info.run_id if cfg.mlflow.enabled else None
    status = "FAILED"
    moved: list[str] = []
    replaced_masks: list[str] = []  # deleted when the run succeeds: a failure puts their votes back
    applied = rows = None
    try:
        log.info("stage 1/4 apply: %d LFs of %d tasks on %s", len(task_set.registry), len(tasks), source.description)
        # The apply also writes each task's vote bitmask per row (jobs.task_masks) for aggregate and write (a full
        # apply; an incremental one carries them, jobs.incremental_masks, or groups its votes, jobs.grouped_masks).
        masks = task_masks.task_masks(task_set, source)
        applied = apply_lfs.run(spark, cfg, run_id=run_id, registry=task_set.registry, source=source, force=force,
                                row_masks=False, task_masks=masks, replaced_masks=replaced_masks)
        if not applied.skipped:
            moved.append(votes_path)
        timings["apply"] = applied.seconds
        if cfg.mlflow.enabled:
            tracking.log_apply(cfg, applied)

        log.info("stage 2/4 aggregate: vote patterns of %d tasks in one pass", len(tasks))
        started = time.perf_counter()
        describe(spark, "aggregate", f"vote patterns of {len(tasks)} tasks")
        # One row per source row: each task's mask from the apply, else the votes of every task grouped
        # by row (masks gone, a task too wide), kept for the write.
        rows = task_masks.stored(spark, applied.row_masks, applied.n_rows, masks,
                                 source.df.schema[source.id_column].dataType)
        if rows is None:
            rows = aggregate.persist_rows(vote_rows(spark, applied, task_set, source, io), applied.n_rows)
        aggs = aggregate_tasks(cfg, rows, task_set)
        # Each task's own gold table (gold_<task>), read as a single-task run reads its one (dev and test rows).
        gold_tables = task_gold.task_gold_sets(spark, cfg, task_set, io, lambda i: task_patterns(rows, task_set, i))
        timings["aggregate"] = time.perf_counter() - started

        entries: dict[str, dict[str, Any]] = {}
        fits: dict[str, Any] = {}
        timings["fit"] = 0.0
        layout = _layout(task_set)
        # The run each task's drift compares with (one lookup for every task).
        previous = previous_run(cfg, run_id, labels_path=labels_path) if cfg.drift.enabled else None
        for i, t in enumerate(tasks):  # on the driver: label models, held-out scores, MLflow (not thread-safe)
            mine = task_applied(applied, t)
            agg = aggs[t.name]
            fitted = fit_label_model.run(cfg, run_id=f"{run_id}/tasks/{t.name}", stats=agg.stats,
                                         gold_counts=agg.gold_counts, lf_versions=mine.lf_versions,
                                         gold_sets=gold_tables.get(t.name), lf_info=lf_info(mine),
                                         gold_table=task_gold.task_gold_config(cfg, t).table_path("gold"),
                                         label_space=t.label_space, tag=t.tag is not None)  # fmt: skip
            timings["fit"] += fitted.seconds
            # Each task against its own numbers in the previous run, before any label is written.
            drift = drift_check(cfg, run_id, agg.stats, fitted.model, list(t.label_space), task=t.name,
                                previous=previous)
            metrics = dict(fitted.metrics)
            holdout = evaluate_holdout(spark, cfg, t, fitted.model, io)
            metrics.update(holdout)
            model_uri = None
            if cfg.mlflow.enabled:
                model_uri = tracking.log_task_fit(cfg, fitted, list(mine.lf_names), list(t.label_space), task=t.name)
                if holdout:
                    import mlflow

                    mlflow.log_metrics({f"{t.name}.{k}": v for k, v in holdout.items()})
            fits[t.name] = multitask_labels.TaskLabels(
                name=t.name, label_space=tuple(t.label_space), columns=tuple(int(c) for c in layout[i][0]),
                lf_versions=tuple((n, mine.lf_versions[n]) for n in mine.lf_names),
                model_json=json.dumps(fitted.model.to_dict()), label_model=model_uri or fitted.model_path,
                label_model_version=fitted.model_version, metrics=fitted.metrics)  # fmt: skip
            entries[t.name] = {
                "label_space": list(t.label_space),
                "gold_column": t.gold_column,
                **({"tag": t.tag} if t.tag else {}),
                "lfs": list(mine.lf_names),
                "patterns": agg.n_patterns,
                "tables": {},
                "label_model": {"path": fitted.model_path, "version": fitted.model_version, "mlflow_uri": model_uri,
                                "method": cfg.label_model.method},
                "metrics": metrics,
                **({"drift": drift} if drift is not None else {}),
            }  # fmt: skip

        log.info("stage 4/4 write: labels of %d tasks for %d rows, one commit", len(tasks), applied.n_rows)
        started = time.perf_counter()
        lineage = {"run_id": run_id, "source_table": applied.source_path, "source_version": applied.source_version,
                   "votes_version": applied.votes_version}  # fmt: skip
        version, n_written, _ = multitask_labels.write(
            spark, io, labels_path, rows, [fits[t.name] for t in tasks], n_lfs=len(task_set.registry),
            k=task_set.registry.cardinality, n_rows=applied.n_rows, tie_break_policy=cfg.output.tie_break_policy,
            lineage=lineage, row_id_type=to_arrow_type(source.df.schema[source.id_column].dataType),
            votes_table=applied.votes_table)  # fmt: skip
        timings["write"] = time.perf_counter() - started
        for t in tasks:
            entries[t.name]["tables"] = {"labels": {"path": labels_path, "version": version, "rows": n_written,
                                                    "column": t.name}}  # fmt: skip
        timings["total"] = time.perf_counter() - t0
        summary = _summary(cfg, run_id, applied, task_set, entries, mlflow_run_id, timings)
        if cfg.report.enabled and report is not None:
            log.info("report: analysis and HTML report of run %s, one per task", run_id)
            reported = report(spark, cfg, run_id=run_id)
            summary.update(analysis=reported["analysis"], report=reported["report"])
            for name, entry in summary["tasks"].items():
                entry.update(analysis=reported["analysis"][name], report=reported["report"][name])
            summary["timings_seconds"]["report"] = round(
                sum(v for k, v in reported["timings_seconds"].items() if k.endswith(".report")), 3)
        compaction.compact_into(summary, cfg, io, source.df)  # before the run reports success
        if cfg.mlflow.enabled:  # before the summary says "succeeded": a failure here puts the tables back
            import mlflow

            mlflow.log_metrics({f"{name}.labels_rows": e["tables"]["labels"]["rows"] for name, e in entries.items()})
            mlflow.log_metrics({"write_seconds": timings["write"], "aggregate_seconds": timings["aggregate"]})
            mlflow.log_dict(summary, "run_summary.json")
        write_json(run_dir(cfg.lakehouse, run_id) / "summary.json", summary)
        status = "FINISHED"
        log.info("pipeline: %d tasks done in %.1fs (apply %.1fs, aggregate %.1fs, fit %.2fs, write %.1fs)", len(tasks),
                 timings["total"], timings["apply"], timings["aggregate"], timings["fit"], timings["write"])
        return summary
    except BaseException as err:
        status = "KILLED" if signals.stopped_by_signal(err) else "FAILED"
        reason = f"run {run_id} {'failed' if status == 'FAILED' else 'was interrupted'}"
        signals.forget_commits()  # this run puts its commits back below; a failed restore says so itself
        # The labels table if its version moved, and the votes if this run wrote them.
        for path in [labels_path, *moved]:
            if (now := io.table_version(path)) != before[path]:
                signals.put_back(f"{'labels' if path == labels_path else 'votes'} {path} v{now}",
                                 lambda path=path: io.restore_table(path, before[path], reason=reason))
        if moved:
            signals.put_back(incremental.row_hashes_named(cfg, io), lambda: incremental.restore_row_hashes(
                cfg, io, before[incremental.row_hashes_path(cfg)], reason))
        stop = signals.signal_error(err)
        if stop is not err:
            raise stop from err
        raise
    finally:
        apply_lfs.retire_masks(cfg, io, applied, replaced_masks)
        if rows is not None:
            rows.unpersist()
        clear_description(spark)
        if cfg.mlflow.enabled:
            tracking.end_run(cfg, status, failing=status != "FINISHED")


def _summary(cfg: PipelineConfig, run_id: str, applied: ApplyResult, task_set: TaskSet,
             entries: dict[str, dict[str, Any]], mlflow_run_id: str | None,
             timings: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """The run summary: the single-task keys, labels tables per task, and the ``tasks`` section."""
    task_of = {name: t.name for t in task_set.tasks for name in t.lf_names}
    return {
        "run_id": run_id,
        "status": "succeeded",
        "reused": False,  # no run-id reuse for several tasks: every run recomputes what changed
        "lakehouse": str(cfg.lakehouse_path),  # where the tables below were (a moved lakehouse: jobs.changes.runs)
        "source": applied.source_summary(),
        "tables": {
            "votes": {"path": applied.votes_table, "version": applied.votes_version, "reused": applied.skipped},
            "labels": {k: v for k, v in next(iter(entries.values()))["tables"]["labels"].items() if k != "column"},
        },
        # What this run's apply computed (incremental apply: README "Incremental apply and verify").
        "apply": {"applied_lfs": list(applied.applied_lfs), "reused_lfs": list(applied.reused_lfs),
                  "applied_rows": applied.applied_rows, "row_changes": applied.row_changes},
        "lfs": [{"name": lf.name, "task": task_of[lf.name], "version": lf.version, "kind": lf.kind, "origin": lf.origin,
                 "votes": lf.votes, "errors": lf.errors, "error_samples": lf.error_samples} for lf in applied.lfs],
        "tasks": entries,
        **({"drift": {name: e["drift"] for name, e in entries.items()}}
           if any("drift" in e for e in entries.values()) else {}),
        "tie_break_policy": cfg.output.tie_break_policy,
        "fingerprint": applied.fingerprint,
        "metrics": {f"{name}.{k}": v for name, e in entries.items() for k, v in e["metrics"].items()},
        "mlflow": {"run_id": mlflow_run_id, "tracking_uri": tracking.tracking_uri(cfg) if cfg.mlflow.enabled else None,
                   "experiment": cfg.mlflow.experiment},
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
    }  # fmt: skip
