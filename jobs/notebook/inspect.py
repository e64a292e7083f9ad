"""Read back what the pipeline wrote: labels with their lineage, label distribution, confidence.

Used by ``notebooks/inspect_labels.py`` (through :mod:`jobs.notebook`). Everything comes from
what the jobs already record: the labels and votes tables' commit metadata and the run's
summaries under ``<lakehouse>/_lakelabel/runs/<run id>/``; nothing is recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import delta_io
from jobs.runtime.config import PipelineConfig
from jobs.runtime.runs import run_dir
from jobs.delta_io.sources import load_source
from jobs.notebook.develop import require_single_task
from jobs.apply_record import VOTES_META_KEY, ApplyResult
from jobs.write_labels import LABELS_META_KEY
from lf_library.errors import ConfigError

__all__ = ["Lineage", "confidence_histogram", "label_distribution", "labels_with_lineage", "lineage"]



@dataclass(frozen=True)
class Lineage:
    """Where the latest labels came from, as recorded by the pipeline.

    Read from the labels commit (``lakelabel.write``), the votes commit (``lakelabel.apply``)
    and the run's ``summary.json``; nothing is recomputed.

    Attributes
    ----------
    labels_table, labels_version : str, int
        The labels table and its latest version.
    votes_table, votes_version : str, int
        The votes table and the version the labels were computed from.
    votes_latest_version : int or None
        The votes table's latest version (differs when LFs were applied again since).
    source_table, source_version, source_fingerprint : str, int or None, str or None
        The labeled source; the fingerprint (Delta table id and version, or a hash of the files)
        comes from the votes commit and is None when the votes changed since.
    lfs : list of dict
        ``name, version`` of every applied LF, with ``votes`` and ``errors`` from the apply summary
        when available.
    label_model, label_model_version : str
        MLflow model URI (or local model file) and a hash of its parameters.
    run_id, mlflow_run_id : str, str or None
        The lakelabel run id and its MLflow run (one per pipeline execution; stage jobs of one run
        id share one); None when MLflow was off.
    notes : list of str
        Anything inconsistent (e.g. the votes table moved on after these labels).
    """

    labels_table: str
    labels_version: int
    votes_table: str
    votes_version: int | None
    votes_latest_version: int | None
    source_table: str | None
    source_version: int | None
    source_fingerprint: str | None
    lfs: list[dict[str, Any]]
    label_space: list[str]
    label_model: str | None
    label_model_version: str | None
    tie_break_policy: str | None
    run_id: str | None
    mlflow_run_id: str | None
    mlflow_tracking_uri: str | None
    metrics: dict[str, Any]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


HEADLINE_METRICS = ("rows", "coverage", "conflict_rate", "accuracy")


def run_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics of a pipeline summary: rows, coverage, conflict rate, accuracy (with gold).

    A multi-task run names its metrics ``<task>.<metric>``: they come back per task,
    ``{task: {metric: value}}``, rather than as an empty dict.
    """
    metrics = summary.get("metrics") or {}
    tasks = summary.get("tasks") or {}
    if not tasks:
        return {k: metrics[k] for k in HEADLINE_METRICS if k in metrics}
    return {task: {k: metrics[f"{task}.{k}"] for k in HEADLINE_METRICS if f"{task}.{k}" in metrics} for task in tasks}


def lineage(spark: SparkSession, cfg: PipelineConfig) -> Lineage:
    """The lineage of the latest labels table (see :class:`Lineage`).

    Raises
    ------
    ConfigError
        No labels table, or one not written by lakelabel.
    """
    require_single_task(cfg, "inspect_labels")
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    labels_path, votes_path = cfg.table_path("labels"), cfg.table_path("votes")
    if not io.table_exists(labels_path):
        raise ConfigError(
            f"no labels table at {labels_path}; run the pipeline first (notebooks/run_pipeline.py or `lakelabel run`)"
        )
    meta = io.read_metadata(labels_path)
    if LABELS_META_KEY not in meta:
        raise ConfigError(
            f"the labels table {labels_path} was not written by lakelabel (its latest commit has no "
            f"{LABELS_META_KEY!r} metadata); point tables.labels at a lakelabel labels table"
        )
    written = json.loads(meta[LABELS_META_KEY])
    votes_version = written.get("votes_version")
    votes_latest = io.table_version(votes_path)
    notes: list[str] = []
    applied: ApplyResult | None = None
    if votes_latest is None:
        notes.append(f"the votes table {votes_path} no longer exists")
    elif not io.unchanged_since(votes_path, votes_version):  # OPTIMIZE, VACUUM since: still the same votes
        notes.append(
            f"the votes table moved on since these labels were written (labels from v{votes_version}, latest "
            f"v{votes_latest}); rerun the pipeline to label with the latest votes"
        )
    else:
        votes_meta = io.read_metadata(votes_path)
        if VOTES_META_KEY in votes_meta:
            applied = ApplyResult.from_json(votes_meta[VOTES_META_KEY])
    counts = {lf.name: lf for lf in applied.lfs} if applied else {}
    lfs = []
    for lf_name, version in sorted(written.get("lfs", {}).items()):
        entry: dict[str, Any] = {"name": lf_name, "version": version}
        if lf_name in counts:
            entry.update(votes=counts[lf_name].votes, errors=counts[lf_name].errors)
        lfs.append(entry)
    run_id = written.get("run_id")
    mlflow: dict[str, Any] = {}
    if run_id:
        # The pipeline's summary, or the write stage's when the stages ran as separate jobs.
        for name in ("summary.json", "write_summary.json"):
            path = run_dir(cfg.lakehouse, run_id, create=False) / name
            if path.exists():
                mlflow = json.loads(path.read_text()).get("mlflow") or {}
                break
    return Lineage(
        labels_table=labels_path,
        labels_version=io.table_version(labels_path),
        votes_table=votes_path,
        votes_version=votes_version,
        votes_latest_version=votes_latest,
        source_table=written.get("source_table"),
        source_version=written.get("source_version"),
        source_fingerprint=applied.source_fingerprint if applied else None,
        lfs=lfs,
        label_space=list(written.get("label_space", [])),
        label_model=written.get("label_model"),
        label_model_version=written.get("label_model_version"),
        tie_break_policy=written.get("tie_break_policy"),
        run_id=run_id,
        mlflow_run_id=mlflow.get("run_id"),
        mlflow_tracking_uri=mlflow.get("tracking_uri"),
        metrics=written.get("metrics", {}),
        notes=notes,
    )


def _labels(spark: SparkSession, cfg: PipelineConfig) -> DataFrame:
    require_single_task(cfg, "inspect_labels")
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    path = cfg.table_path("labels")
    if not io.table_exists(path):
        raise ConfigError(f"no labels table at {path}; run the pipeline first (notebooks/run_pipeline.py or `lakelabel run`)")
    return io.read_table(spark, path)


def labels_with_lineage(
    spark: SparkSession, cfg: PipelineConfig, *, limit: int | None = 20, columns: Sequence[str] | None = None
) -> DataFrame:
    """Rows of the latest labels table (labels and lineage columns) joined with the source.

    Parameters
    ----------
    limit : int or None
        Rows to return; None for all (the result is a lazy Spark DataFrame either way).
    columns : sequence of str, optional
        Source columns to add; default every source column except the id.

    Returns
    -------
    pyspark.sql.DataFrame
        The labels table's columns, then the source columns (from the source as it is now).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        # as bins= and sample_rows= are: Spark's own errors here were an AnalysisException or a Py4JError
        raise ValueError(f"limit must be an int >= 0 or None (all rows), got {limit!r}")
    labels = _labels(spark, cfg)
    source = load_source(spark, cfg.source, io=delta_io.delta_io(spark, cfg.tables.delta_io))
    keep = [c for c in source.df.columns if c != source.id_column] if columns is None else list(columns)
    missing = [c for c in keep if c not in source.df.columns]
    if missing:
        raise ConfigError(f"columns {missing} not found in {source.info.path}; its columns are: {source.df.columns}")
    text = source.df.select(F.col(source.id_column).alias("row_id"), *[F.col(c) for c in keep if c not in labels.columns])
    # Limit before the join: a left join keeps every label row, so the result is the same rows,
    # and Spark joins only those instead of the whole labels table.
    labels = labels.limit(limit) if limit is not None else labels
    return labels.join(text, "row_id", "left")


def label_distribution(spark: SparkSession, cfg: PipelineConfig) -> pd.DataFrame:
    """Rows per hard label (``"(abstain)"`` for rows left unlabeled), with their share and mean confidence."""
    labels = _labels(spark, cfg)
    got = labels.groupBy("label", "label_name").agg(
        F.count(F.lit(1)).alias("rows"), F.avg("confidence").alias("mean_confidence")
    ).toPandas()
    got["label_name"] = got["label_name"].fillna("(abstain)")
    got = got.sort_values("label").reset_index(drop=True)
    got["share"] = got["rows"] / got["rows"].sum() if len(got) else []
    return got[["label", "label_name", "rows", "share", "mean_confidence"]]


def confidence_histogram(spark: SparkSession, cfg: PipelineConfig, *, bins: int = 10) -> pd.DataFrame:
    """Rows per confidence bucket: ``bins`` equal buckets over [0, 1], the last one closed."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    labels = _labels(spark, cfg)
    bucket = F.least(F.floor(F.col("confidence") * bins).cast("int"), F.lit(bins - 1))
    got = {r["bucket"]: r["rows"] for r in labels.groupBy(bucket.alias("bucket")).count()
           .withColumnRenamed("count", "rows").collect()}
    return pd.DataFrame(
        {
            "low": [i / bins for i in range(bins)],
            "high": [(i + 1) / bins for i in range(bins)],
            "rows": [int(got.get(i, 0)) for i in range(bins)],
        }
    )
