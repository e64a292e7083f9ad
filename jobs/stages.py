"""The summary every stage job returns, so a scheduler reads them alike.

``run_id``, ``stage``, ``status``, ``skipped`` (nothing new was computed), ``tables`` (``path`` and
``version`` of each table read or written), ``counts``, ``mlflow`` (the MLflow run that the stages
of one run id share), ``timings_seconds``, plus stage details (``source``, ``lfs``, ``stats``,
``label_model``, ``metrics``). The stages hand over through ``<lakehouse>/_lakelabel/runs/<run id>/``.

Each stage job (``jobs/apply_lfs.py``, ``aggregate.py``, ``fit_label_model.py``, ``write_labels.py``)
builds an :class:`Outcome` and calls :func:`finish`; this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs.runtime import signals, tracking
from jobs.runtime.config import PipelineConfig
from jobs.runtime.runs import mark_failed

__all__ = ["STAGES", "Outcome", "finish", "votes_table"]

STAGES = ("apply", "aggregate", "fit", "write")
# The stage whose output the next stage takes without --run-id and would publish: a model. When fit's MLflow logging
# fails, its run folder is marked failed, so `write` without --run-id passes over the model (a fit of that run id that
# succeeds replaces it and the mark). apply's and write's commits stand, and their exit line says so; aggregate's
# statistics are counts of the votes, whatever became of their logging.
HANDS_ON = ("fit",)


@dataclass
class Outcome:
    """What one stage did, before it is turned into the shared summary shape."""

    skipped: bool
    seconds: float
    tables: dict[str, dict[str, Any]]
    counts: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    # What the stage adds to the shared MLflow run (called only when MLflow is on).
    log: Callable[[], None] = lambda: None


def finish(stage: str, cfg: PipelineConfig, run_id: str, outcome: Outcome) -> dict[str, Any]:
    """Log ``outcome`` to the run's shared MLflow run and return the stage summary."""
    mlflow = {"run_id": None, "tracking_uri": None, "experiment": cfg.mlflow.experiment}
    if cfg.mlflow.enabled:
        try:
            active = tracking.attach_run(cfg, run_id)
            mlflow.update(run_id=active.info.run_id, tracking_uri=tracking.tracking_uri(cfg))
            outcome.log()
            tracking.end_run(cfg, "FINISHED")
        except BaseException as err:
            # SIGTERM or Ctrl-C while the stage logs (after its work, a write's commit included): KILLED, as a run's.
            status = "KILLED" if signals.stopped_by_signal(err) else "FAILED"
            if stage in HANDS_ON:  # its model stays in the run folder: `write` without --run-id passes over it
                mark_failed(cfg.lakehouse, run_id, status == "KILLED", signals.signal_name() or str(err))
            tracking.end_run(cfg, status, failing=True)
            raise
    return {
        "run_id": run_id, "stage": stage, "status": "succeeded", "skipped": outcome.skipped,
        "lakehouse": str(cfg.lakehouse_path), "tables": outcome.tables, "counts": outcome.counts, **outcome.details, "mlflow": mlflow,
        "timings_seconds": {stage: round(outcome.seconds, 3)},
    }  # fmt: skip


def votes_table(applied: Any) -> dict[str, dict[str, Any]]:
    return {"votes": {"path": applied.votes_table, "version": applied.votes_version}}
