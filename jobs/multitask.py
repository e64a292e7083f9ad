"""The pipeline for several tasks: one apply pass, one grouping of the votes, then fit and write per task.

``lakelabel run`` on a config with ``tasks:`` or ``multi_label:`` (README "Several tasks at once")
comes here. The votes of every task's LFs go to the one votes table (LF names are unique across
tasks, so a vote's task is its LF's). The votes are grouped once by (task, row) into vote
patterns, persisted, and every task's statistics come from one Spark job over them; each task's
label model is fitted on the driver and its labels go to its own Delta table
``<tables.labels>_<task>`` with today's labels schema. MLflow: one run, metric names prefixed
``<task>.``, one logged label model per task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import aggregate, apply_lfs, delta_io, fit_label_model, write_labels
from jobs.aggregate import AggregateResult
from jobs.apply_lfs import ApplyResult
from jobs.delta_io.sources import Source, check_source, gold_ids, load_source
from jobs.runtime import tracking
from jobs.runtime.config import PipelineConfig
from jobs.runtime.metrics import gold_metrics
from jobs.runtime.runs import check_run_id, run_dir, write_json
from jobs.runtime.session import clear_description, describe
from jobs.tasks import Task, TaskSet, build_task_set, task_config, task_source
from labelmodel import MajorityLabelVoter
from labelmodel.stats import stats_from_matrix
from lf_library.apply import required_columns

log = logging.getLogger(__name__)

__all__ = ["run", "task_applied", "task_patterns", "aggregate_tasks", "task_rows"]


def task_applied(applied: ApplyResult, task: Task) -> ApplyResult:
    """The apply result as one task sees it: its LFs and its label space."""
    names = set(task.lf_names)
    return replace(applied, label_space=tuple(task.label_space), lfs=tuple(lf for lf in applied.lfs if lf.name in names))


def task_patterns(spark: SparkSession, applied: ApplyResult, task_set: TaskSet, io: Any) -> DataFrame:
    """``task int, row_id, pattern array<int>`` for every (task, row) with a vote: one grouping of the votes.

    ``task`` is the index into ``task_set.tasks``; codes are ``lf_index * k + class`` within the task
    (the same codes :func:`jobs.aggregate.pattern_frame` gives a task on its own).
    """
    index = spark.createDataFrame(
        [(name, i, j, len(t.label_space)) for i, t in enumerate(task_set.tasks) for j, name in enumerate(t.lf_names)],
        "lf_name string, task int, lf_index int, k int",
    )
    votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
    return (
        votes.where(F.col("vote") >= 0)
        .join(F.broadcast(index), "lf_name")
        .select("task", "row_id", (F.col("lf_index") * F.col("k") + F.col("vote")).cast("int").alias("code"))
        .groupBy("task", "row_id")
        .agg(F.array_sort(F.collect_list("code")).alias("pattern"))
    )


def _gold_ids(source: Source, tasks: tuple[Task, ...]) -> tuple[DataFrame, dict[str, Source], DataFrame]:
    """``row_id, golds array<int>`` (one gold class id per task, -1 if none) and each task's Source.

    The ids are persisted (every task's write joins them); the third value is the persisted
    DataFrame, to unpersist at the end of the run.
    """
    shared = source
    for t in tasks:
        shared = replace(shared, df=task_source(shared, t).df)
    sources = {t.name: replace(task_source(shared, t), df=shared.df) for t in tasks}
    golds = [gold_ids(sources[t.name], tuple(t.label_space)) if sources[t.name].gold_column else F.lit(-1).cast("int")
             for t in tasks]  # fmt: skip
    row_id = F.col(source.id_column).alias("row_id")
    if not any(sources[t.name].gold_column for t in tasks):
        # Every task's write joins these ids: keep them, not a column of -1s that Spark computes on the fly.
        ids = shared.df.select(row_id).persist(StorageLevel.MEMORY_AND_DISK)
        return ids.select("row_id", F.array(*golds).alias("golds")), sources, ids
    ids = shared.df.select(row_id, F.array(*golds).alias("golds")).persist(StorageLevel.MEMORY_AND_DISK)
    return ids, sources, ids


def task_rows(codes: DataFrame, ids: DataFrame, index: int) -> DataFrame:
    """:func:`jobs.aggregate.pattern_frame` rows of task ``index``: every source row, ``[]`` where none voted."""
    mine = codes.where(F.col("task") == index).select("row_id", "pattern")
    joined = ids.select("row_id", F.element_at("golds", index + 1).alias("gold")).join(mine, "row_id", "left")
    return joined.select("row_id", F.coalesce(F.col("pattern"), F.array().cast("array<int>")).alias("pattern"), "gold")


def aggregate_tasks(
    cfg: PipelineConfig, codes: DataFrame, ids: DataFrame, task_set: TaskSet, n_rows: int,
) -> dict[str, AggregateResult]:
    """Every task's :class:`~jobs.aggregate.AggregateResult` from one Spark job over ``codes``.

    Rows where a task has no vote are not in ``codes``: their count per gold class is the
    task's total minus its covered rows. Past ``aggregate.max_patterns`` patterns in all, each
    task is aggregated on its own by :func:`jobs.aggregate.aggregate_patterns` (overlap moments).
    """
    started = time.perf_counter()
    tasks = task_set.tasks
    with_gold = [t.gold_column is not None for t in tasks]
    k_max = max(len(t.label_space) for t in tasks)
    covered = codes.join(ids, "row_id").select("task", "pattern", F.element_at("golds", F.col("task") + 1).alias("gold"))
    grouped = covered.groupBy("task", "pattern", "gold").agg(F.count(F.lit(1)).alias("n"))
    limit = max(cfg.aggregate.max_patterns, 0) * (k_max + 1) * len(tasks)
    head = grouped.limit(limit + 1).collect() if limit else []
    if not limit or len(head) > limit:
        log.info("aggregate: more than %d (task, pattern, gold) groups; aggregating each task on its own", limit)
        return {t.name: aggregate.aggregate_patterns(task_rows(codes, ids, i), t.lf_names, len(t.label_space),
                                                     max_patterns=cfg.aggregate.max_patterns, with_gold=with_gold[i])
                for i, t in enumerate(tasks)}  # fmt: skip
    totals: dict[tuple[int, int], int] = {}
    if any(with_gold):
        for r in ids.select(F.posexplode("golds").alias("task", "gold")).groupBy("task", "gold").count().collect():
            totals[(r["task"], r["gold"])] = r["count"]
    else:
        totals = {(i, -1): n_rows for i in range(len(tasks))}
    out: dict[str, AggregateResult] = {}
    for i, t in enumerate(tasks):
        mine = [(r["pattern"], r["gold"], r["n"]) for r in head if r["task"] == i]
        seen: dict[int, int] = {}
        for _, gold, n in mine:
            seen[gold] = seen.get(gold, 0) + n
        for (task, gold), total in totals.items():
            if task == i and total > seen.get(gold, 0):
                mine.append(([], gold, total - seen.get(gold, 0)))
        out[t.name] = _task_stats(mine, t, with_gold[i], cfg.aggregate.max_patterns, started)
    return out


def _task_stats(rows: list[tuple[list[int], int, int]], task: Task, with_gold: bool, max_patterns: int,
                started: float) -> AggregateResult:  # fmt: skip
    """Statistics of one task from its (pattern codes, gold, count) rows, as aggregate_patterns computes them."""
    m, k = len(task.lf_names), len(task.label_space)
    lines = np.full((len(rows), m), -1, dtype=np.int16)
    for i, (pattern, _, _) in enumerate(rows):
        codes = np.asarray(pattern, dtype=np.int64)
        lines[i, codes // k] = codes % k
    gold = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    n = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    distinct, inverse = np.unique(lines, axis=0, return_inverse=True)
    stats = stats_from_matrix(lines, k, lf_names=tuple(task.lf_names), weights=n)
    if stats.patterns is None and len(distinct) > max_patterns:
        log.warning("aggregate: task %s has %d patterns > aggregate.max_patterns", task.name, len(distinct))
    gold_counts = aggregate.gold_by_pattern(inverse, gold, n, len(distinct), k) if with_gold else None
    n_gold = int(gold_counts.sum()) if gold_counts is not None else 0
    return AggregateResult(stats, gold_counts, n_gold, len(distinct), time.perf_counter() - started)


def evaluate_holdout(spark: SparkSession, cfg: PipelineConfig, task: Task, model: Any, io: Any) -> dict[str, float]:
    """``task``'s label model scored on ``evaluation:`` with the task's gold column (as the pipeline does)."""
    ev = cfg.evaluation
    if ev is None or not task.gold_column:
        return {}
    source = load_source(spark, replace(ev, gold_column=task.gold_column), role="evaluation", io=io)
    source = task_source(source, task)
    describe(spark, "evaluate", f"task {task.name}: held-out {source.description}")
    check_source(source, text_columns=apply_lfs.text_columns(task.registry),
                 required_columns=required_columns(task.registry.lfs))
    votes = apply_lfs.compute_votes(source, task.registry, batch_size=cfg.apply.batch_size)
    k = len(task.label_space)
    rows = aggregate.pattern_frame(votes, aggregate.source_ids(source, task.label_space), task.lf_names, k)
    agg = aggregate.aggregate_patterns(rows, task.lf_names, k, max_patterns=max(cfg.aggregate.max_patterns, 1),
                                       with_gold=True)
    if agg.gold_counts is None:
        return {}
    mv = MajorityLabelVoter(cardinality=k).fit_from_stats(agg.stats)
    return {"eval_rows": float(agg.gold_counts.sum()), "eval_coverage": agg.stats.n_covered / max(agg.stats.n_rows, 1),
            **gold_metrics(model, mv, agg.stats.patterns, agg.gold_counts, prefix="eval_")}  # fmt: skip


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str, force: bool = False) -> dict[str, Any]:
    """Run every task of ``cfg``; return the run summary (with a ``tasks`` section, one entry per task).

    Tables move only when their step commits; when a later step fails, the votes and every
    task's labels table are put back to their versions before the run.
    """
    run_id = check_run_id(run_id)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    task_set = build_task_set(cfg)
    tasks = task_set.tasks
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    source = load_source(spark, cfg.source, io=io)
    votes_path = cfg.table_path("votes")
    task_cfgs = {t.name: task_config(cfg, t) for t in tasks}
    labels_paths = {t.name: task_cfgs[t.name].table_path("labels") for t in tasks}
    before = {path: io.table_version(path) for path in [votes_path, *labels_paths.values()]}
    mlflow_run_id = tracking.start_run(cfg, run_id).info.run_id if cfg.mlflow.enabled else None
    status = "FAILED"
    moved: list[str] = []
    codes = cached_ids = None
    try:
        log.info("stage 1/4 apply: %d LFs of %d tasks on %s", len(task_set.registry), len(tasks), source.description)
        applied = apply_lfs.run(spark, cfg, run_id=run_id, registry=task_set.registry, source=source, force=force)
        if not applied.skipped:
            moved.append(votes_path)
        timings["apply"] = applied.seconds
        if cfg.mlflow.enabled:
            tracking.log_apply(cfg, applied)

        log.info("stage 2/4 aggregate: vote patterns of %d tasks in one pass", len(tasks))
        started = time.perf_counter()
        describe(spark, "aggregate", f"vote patterns of {len(tasks)} tasks")
        ids, sources, cached_ids = _gold_ids(source, tasks)
        codes = task_patterns(spark, applied, task_set, io).persist(StorageLevel.MEMORY_AND_DISK)
        aggs = aggregate_tasks(cfg, codes, ids, task_set, applied.n_rows)
        timings["aggregate"] = time.perf_counter() - started

        entries: dict[str, dict[str, Any]] = {}
        fits: dict[str, Any] = {}
        timings["fit"] = 0.0
        for t in tasks:  # on the driver: label models, held-out scores, MLflow (which is not thread-safe)
            mine = task_applied(applied, t)
            agg = aggs[t.name]
            fitted = fit_label_model.run(cfg, run_id=f"{run_id}/tasks/{t.name}", stats=agg.stats,
                                         gold_counts=agg.gold_counts, lf_versions=mine.lf_versions,
                                         lf_info=apply_lfs.lf_info(mine))  # fmt: skip
            timings["fit"] += fitted.seconds
            metrics = dict(fitted.metrics)
            holdout = evaluate_holdout(spark, cfg, t, fitted.model, io)
            metrics.update(holdout)
            model_uri = None
            if cfg.mlflow.enabled:
                model_uri = tracking.log_task_fit(cfg, fitted, list(mine.lf_names), list(t.label_space), task=t.name)
                if holdout:
                    import mlflow

                    mlflow.log_metrics({f"{t.name}.{k}": v for k, v in holdout.items()})
            fits[t.name] = (mine, fitted, model_uri)
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
            }  # fmt: skip

        # One task after another: writing 4 tables at once from driver threads measured no faster
        # (benchmarks/RESULTS.md, busy machine: the writes are CPU-bound there).
        started = time.perf_counter()
        written_all = {}
        for i, t in enumerate(tasks):
            log.info("stage 4/4 write: task %s (%d/%d), labels for %d rows", t.name, i + 1, len(tasks), applied.n_rows)
            mine, fitted, model_uri = fits[t.name]
            written_all[t.name] = write_labels.run(spark, task_cfgs[t.name], run_id=run_id, applied=mine, fitted=fitted,
                                                   source=sources[t.name], model_uri=model_uri,
                                                   rows=task_rows(codes, ids, i))  # fmt: skip
        timings["write"] = time.perf_counter() - started
        for t in tasks:
            written = written_all[t.name]
            entries[t.name]["tables"] = {"labels": {"path": written.labels_table, "version": written.labels_version,
                                                    "rows": written.n_rows}}  # fmt: skip
        timings["total"] = time.perf_counter() - t0
        summary = _summary(cfg, run_id, applied, task_set, entries, mlflow_run_id, timings)
        if cfg.report.enabled:
            log.warning("report: not written for a multi-task run; `lakelabel report` reads one task's labels")
        write_json(run_dir(cfg.lakehouse, run_id) / "summary.json", summary)
        if cfg.mlflow.enabled:
            import mlflow

            mlflow.log_metrics({f"{name}.labels_rows": e["tables"]["labels"]["rows"] for name, e in entries.items()})
            mlflow.log_metrics({"write_seconds": timings["write"], "aggregate_seconds": timings["aggregate"]})
            mlflow.log_dict(summary, "run_summary.json")
        status = "FINISHED"
        log.info("pipeline: %d tasks done in %.1fs (apply %.1fs, aggregate %.1fs, fit %.2fs, write %.1fs)", len(tasks),
                 timings["total"], timings["apply"], timings["aggregate"], timings["fit"], timings["write"])
        return summary
    except BaseException as err:
        status = "FAILED" if isinstance(err, Exception) else "KILLED"
        reason = f"run {run_id} {'failed' if status == 'FAILED' else 'was interrupted'}"
        # Every labels table whose version moved, and the votes if this run wrote them.
        for path in [*labels_paths.values(), *moved]:
            if io.table_version(path) != before[path]:
                io.restore_table(path, before[path], reason=reason)
        raise
    finally:
        for cached in (codes, cached_ids):
            if cached is not None:
                cached.unpersist()
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
        "source": {"path": applied.source_path, "format": applied.source_format,
                   "version": applied.source_version, "rows": applied.n_rows},
        "tables": {
            "votes": {"path": applied.votes_table, "version": applied.votes_version, "reused": applied.skipped},
            **{f"labels_{name}": e["tables"]["labels"] for name, e in entries.items()},
        },
        "lfs": [{"name": lf.name, "task": task_of[lf.name], "version": lf.version, "kind": lf.kind, "origin": lf.origin,
                 "votes": lf.votes, "errors": lf.errors, "error_samples": lf.error_samples} for lf in applied.lfs],
        "tasks": entries,
        "tie_break_policy": cfg.output.tie_break_policy,
        "fingerprint": applied.fingerprint,
        "metrics": {f"{name}.{k}": v for name, e in entries.items() for k, v in e["metrics"].items()},
        "mlflow": {"run_id": mlflow_run_id, "tracking_uri": tracking.tracking_uri(cfg) if cfg.mlflow.enabled else None,
                   "experiment": cfg.mlflow.experiment},
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
    }  # fmt: skip
