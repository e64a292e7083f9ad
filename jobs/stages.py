"""Each pipeline stage as its own job (``lakelabel apply|aggregate|fit|write``), for orchestrators.

Every stage returns a summary of the same shape, so a scheduler reads them alike:

``run_id``, ``stage``, ``status``, ``skipped`` (nothing new was computed), ``tables`` (``path`` and
``version`` of each table read or written), ``counts``, ``mlflow`` (the MLflow run that the stages
of one run id share), ``timings_seconds``, plus stage details (``source``, ``lfs``, ``stats``,
``label_model``, ``metrics``). The stages hand over through ``<lakehouse>/_lakelabel/runs/<run id>/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs import _mlflow, fit_label_model
from jobs._config import PipelineConfig
from jobs._delta import delta_io
from jobs._runs import latest_run_with, run_dir
from jobs.apply_lfs import lf_info, load_apply_result

__all__ = ["STAGES", "run_stage"]

STAGES = ("apply", "aggregate", "fit", "write")


@dataclass
class _Outcome:
    skipped: bool
    seconds: float
    tables: dict[str, dict[str, Any]]
    counts: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    # What the stage adds to the shared MLflow run (called only when MLflow is on).
    log: Callable[[], None] = lambda: None


def run_stage(
    stage: str,
    cfg: PipelineConfig,
    *,
    run_id: str,
    spark: Any = None,
    model_run_id: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Run one stage and return its summary (see the module docstring).

    Parameters
    ----------
    stage : {"apply", "aggregate", "fit", "write"}
    cfg : PipelineConfig
    run_id : str
        The run these stages belong to; a rerun with the same id and inputs computes nothing new.
    spark : pyspark.sql.SparkSession, optional
        Needed by every stage but ``fit`` (driver only).
    model_run_id : str, optional
        ``fit``: the run whose statistics to fit; ``write``: the run whose model to use. Default:
        the latest run that has them.
    force : bool
        ``apply``: recompute votes even when they are up to date.
    """
    io = delta_io(spark, cfg.tables.delta_io) if spark is not None else None
    if stage == "apply":
        outcome = _apply(spark, cfg, run_id, force)
    elif stage == "aggregate":
        outcome = _aggregate(spark, cfg, run_id, io)
    elif stage == "fit":
        outcome = _fit(cfg, run_id, model_run_id)
    elif stage == "write":
        outcome = _write(spark, cfg, run_id, model_run_id, io)
    else:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    mlflow = {"run_id": None, "tracking_uri": None, "experiment": cfg.mlflow.experiment}
    if cfg.mlflow.enabled:
        active = _mlflow.attach_run(cfg, run_id)
        mlflow.update(run_id=active.info.run_id, tracking_uri=_mlflow.tracking_uri(cfg))
        status = "FAILED"
        try:
            outcome.log()
            status = "FINISHED"
        finally:
            _mlflow.end_run(cfg, status)
    return {
        "run_id": run_id, "stage": stage, "status": "succeeded", "skipped": outcome.skipped,
        "tables": outcome.tables, "counts": outcome.counts, **outcome.details, "mlflow": mlflow,
        "timings_seconds": {stage: round(outcome.seconds, 3)},
    }  # fmt: skip


def _votes(applied) -> dict[str, dict[str, Any]]:
    return {"votes": {"path": applied.votes_table, "version": applied.votes_version}}


def _apply(spark: Any, cfg: PipelineConfig, run_id: str, force: bool) -> _Outcome:
    from jobs import apply_lfs

    applied = apply_lfs.run(spark, cfg, run_id=run_id, force=force)
    lfs = applied.lfs
    return _Outcome(
        skipped=applied.skipped,
        seconds=applied.seconds,
        tables=_votes(applied),
        counts={"rows": applied.n_rows, "lfs": len(lfs), "votes": sum(lf.votes for lf in lfs),
                "errors": sum(lf.errors for lf in lfs)},
        details={
            "source": {"path": applied.source_path, "format": applied.source_format, "version": applied.source_version},
            "lfs": [{"name": lf.name, "version": lf.version, "kind": lf.kind, "origin": lf.origin,
                     "votes": lf.votes, "errors": lf.errors}
                    for lf in lfs],
            "fingerprint": applied.fingerprint,
        },
        log=(lambda: None) if applied.skipped else (lambda: _mlflow.log_apply(cfg, applied)),
    )  # fmt: skip


def _aggregate(spark: Any, cfg: PipelineConfig, run_id: str, io: Any) -> _Outcome:
    from jobs import aggregate

    applied = load_apply_result(cfg, io)
    agg = aggregate.run(spark, cfg, applied=applied)
    folder = fit_label_model.save_aggregate(cfg, run_id, agg)
    s = agg.stats

    def log() -> None:
        import mlflow

        mlflow.log_metrics({"aggregate_patterns": agg.n_patterns, "coverage": s.n_covered / max(s.n_rows, 1),
                            "aggregate_seconds": agg.seconds})

    return _Outcome(
        skipped=False,
        seconds=agg.seconds,
        tables=_votes(applied),
        counts={"rows": s.n_rows, "covered": s.n_covered, "patterns": agg.n_patterns, "gold": agg.n_gold},
        details={"stats": str(folder / fit_label_model.STATS_FILE)},
        log=log,
    )


def _fit(cfg: PipelineConfig, run_id: str, stats_run_id: str | None) -> _Outcome:
    stats, gold = fit_label_model.load_aggregate(cfg, stats_run_id)  # names the missing stage first
    applied = load_apply_result(cfg)
    fitted = fit_label_model.run(cfg, run_id=run_id, stats=stats, gold_counts=gold, lf_versions=applied.lf_versions,
                                 lf_info=lf_info(applied))
    model = {"path": fitted.model_path, "version": fitted.model_version, "mlflow_uri": None,
             "method": cfg.label_model.method}  # fmt: skip

    def log() -> None:
        # The write stage reads this URI back from fit_summary.json for the labels' lineage.
        model["mlflow_uri"] = _mlflow.log_fit(cfg, fitted, list(applied.lf_names), list(applied.label_space))

    return _Outcome(
        skipped=False,
        seconds=fitted.seconds,
        tables=_votes(applied),
        counts={"rows": stats.n_rows, "lfs": len(applied.lfs)},
        details={"label_model": model, "metrics": fitted.metrics},
        log=log,
    )


def _write(spark: Any, cfg: PipelineConfig, run_id: str, model_run_id: str | None, io: Any) -> _Outcome:
    from jobs import write_labels

    model_run = model_run_id or latest_run_with(cfg.lakehouse, fit_label_model.MODEL_FILE)
    fit_summary = run_dir(cfg.lakehouse, model_run, create=False) / "fit_summary.json" if model_run else None
    model_uri = None
    if fit_summary is not None and fit_summary.exists():
        model_uri = json.loads(fit_summary.read_text()).get("label_model", {}).get("mlflow_uri")
    applied = load_apply_result(cfg, io)
    written = write_labels.run(spark, cfg, run_id=run_id, applied=applied, model_run_id=model_run,
                               model_uri=model_uri)  # fmt: skip

    def log() -> None:
        import mlflow

        mlflow.log_metrics({"labels_rows": written.n_rows, "write_seconds": written.seconds})

    return _Outcome(
        skipped=written.skipped,
        seconds=written.seconds,
        tables={**_votes(applied), "labels": {"path": written.labels_table, "version": written.labels_version}},
        counts={"rows": written.n_rows},
        details={"label_model": {"run_id": model_run, "mlflow_uri": model_uri}},
        log=(lambda: None) if written.skipped else log,
    )
