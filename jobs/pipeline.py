"""Pipeline job: apply -> aggregate -> fit -> write, in one Spark application and one MLflow run.

Run: ``spark-submit jobs/pipeline.py --config conf/youtube.yaml`` or ``lakelabel run --config ...``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from jobs import aggregate, apply_lfs, fit_label_model, write_labels
from jobs import compaction, delta_io, incremental, multitask
from jobs.apply_record import lf_info, lf_summaries
from jobs.changes.drift import check as drift_check
from jobs.tasks import is_multitask
from jobs.runtime import tracking
from jobs.runtime import command, signals
from jobs.runtime.config import PipelineConfig
from jobs.runtime.metrics import gold_metrics, holdout_line
from jobs.runtime.runs import check_run_id, failed_run, mark_done, mark_failed, mark_running, run_dir, write_json
from jobs.runtime.session import clear_description, describe
from jobs.delta_io.sources import Source, load_source
from labelmodel import MajorityLabelVoter
from lf_library import LFRegistry
from lf_library.slicing import load_slices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineResult:
    """What :func:`run` returns: the run id and its summary (``summary.json``)."""

    run_id: str
    summary: dict[str, Any]

    @property
    def reused(self) -> bool:
        """True when a rerun with this run id and the same inputs changed nothing: the summary is the earlier run's."""
        return bool(self.summary.get("reused"))

    @property
    def line(self) -> str:
        """The line ``lakelabel run`` prints (:func:`done_line`): labels and votes versions, and
        ``(already done with these inputs: nothing ran)`` when :attr:`reused`."""
        return done_line(self.summary)


def check_holdout(spark: SparkSession, cfg: PipelineConfig, registry: LFRegistry) -> Source | None:
    """The ``evaluation:`` source, read and checked (:func:`~jobs.lf_pass.check_lf_source`), or None without one (or
    without its gold column). The run checks it before apply, so a duplicate id in it fails in
    seconds rather than after apply, aggregate and fit; the pass is the one scoring it would make."""
    ev = cfg.evaluation
    if ev is None or not ev.gold_column:
        return None
    source = load_source(spark, ev, role="evaluation", io=delta_io.delta_io(spark, cfg.tables.delta_io))
    describe(spark, "evaluate", f"check held-out {source.description}")
    apply_lfs.check_lf_source(source, registry)  # its model LFs too: with the votes up to date apply checks none
    return source


def evaluate_holdout(spark: SparkSession, cfg: PipelineConfig, registry: LFRegistry, model,
                     source: Source | None = None) -> dict[str, float]:
    """Score the fitted model on ``evaluation:`` (a held-out source with gold labels).

    The LFs run on it in memory (no table is written); only counts per (vote pattern, gold
    class) reach the driver. ``source``: the evaluation source :func:`check_holdout` returned
    (default: read and check it now).
    """
    if source is None:
        source = check_holdout(spark, cfg, registry)
    if source is None:
        return {}
    describe(spark, "evaluate", f"held-out {source.description}")
    votes = apply_lfs.compute_votes(source, registry, batch_size=cfg.apply.batch_size)
    rows = aggregate.pattern_frame(votes, aggregate.source_ids(source, registry.label_space), registry.names,
                                   registry.cardinality)
    agg = aggregate.aggregate_patterns(rows, registry.names, registry.cardinality,
                                       max_patterns=max(cfg.aggregate.max_patterns, 1), with_gold=True)
    if agg.gold_counts is None:
        log.warning("evaluate: more distinct patterns than aggregate.max_patterns; held-out accuracy skipped")
        return {}
    n_gold = int(agg.gold_counts.sum())
    aggregate.warn_unmatched_holdout_gold(source, registry.label_space, n_gold, agg.stats.n_rows)
    if not n_gold:
        return {}
    # Majority vote needs no training data; fitting on the held-out statistics only records LF names.
    mv = MajorityLabelVoter(cardinality=registry.cardinality).fit_from_stats(agg.stats)
    patterns = agg.stats.patterns
    metrics = {
        "eval_rows": float(agg.gold_counts.sum()),
        "eval_coverage": agg.stats.n_covered / max(agg.stats.n_rows, 1),
        **gold_metrics(model, mv, patterns, agg.gold_counts, prefix="eval_"),
    }
    log.info("evaluate: %s; held out in %s", holdout_line(metrics), source.description)
    return metrics


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    *,
    run_id: str,
    registry: LFRegistry | None = None,
    force: bool = False,
) -> PipelineResult:
    """Run every stage; the tables move only when their stage commits.

    A config with several tasks (``tasks:``, ``multi_label:``) runs :func:`jobs.multitask.run`.
    """
    run_id = check_run_id(run_id)  # it names a folder under the lakehouse
    if is_multitask(cfg):
        from jobs import report

        return PipelineResult(run_id, multitask.run(spark, cfg, run_id=run_id, force=force, report=report.run))
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    registry = registry or apply_lfs.build_registry(cfg)
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    source = load_source(spark, cfg.source, io=io)
    done = _completed(cfg, run_id, apply_lfs.votes_fingerprint(cfg, source, registry), io)
    if done is not None and not force:
        log.info("pipeline: run %s already completed with these inputs; nothing to do", run_id)
        return PipelineResult(run_id, {**done, "reused": True})
    held_out = check_holdout(spark, cfg, registry)
    votes_path = cfg.table_path("votes")
    labels_path = cfg.table_path("labels")
    votes_before, labels_before = io.table_version(votes_path), io.table_version(labels_path)
    hashes_before = io.table_version(incremental.row_hashes_path(cfg))
    if cfg.mlflow.enabled:
        mlflow_run = tracking.start_run(cfg, run_id)
        mlflow_run_id = mlflow_run.info.run_id
    else:
        mlflow_run_id = None
    status = "FAILED"
    handed_on = False  # this attempt saved statistics (and maybe a model) in the run folder
    applied = written = shared = None
    replaced_masks: list[str] = []  # deleted when the run succeeds: a failure puts their votes back
    try:
        log.info("stage 1/4 apply: %d LFs on %s", len(registry), source.description)
        applied = apply_lfs.run(spark, cfg, run_id=run_id, registry=registry, source=source, force=force,
                                replaced_masks=replaced_masks)
        timings["apply"] = applied.seconds
        if cfg.mlflow.enabled:
            tracking.log_apply(cfg, applied)

        log.info("stage 2/4 aggregate: sufficient statistics on Spark")
        # Aggregate and write read each row's vote bitmask, which the apply wrote next to the votes
        # (jobs.apply_masks; jobs.incremental_masks; jobs.grouped_masks after an LF change); otherwise (masks
        # that do not fit, a non-local master) each groups the votes by row (one hash
        # aggregation of bitmasks, jobs.aggregate.mask_frame). The labels carry each row's vote
        # codes, so analyze (the report) does not group the votes again.
        # One row_masks for aggregate and write both: without masks to read, the votes are grouped once.
        shared = aggregate.row_masks(spark, applied, source, io, persist_grouped=True)
        agg = aggregate.run(spark, cfg, applied=applied, source=source, rows=shared)
        timings["aggregate"] = agg.seconds
        handed_on = True  # from here a failure leaves this attempt's files (save_aggregate may have begun)
        mark_running(cfg.lakehouse, run_id)  # a kill -9 from here leaves files the stage jobs must pass over
        fit_label_model.save_aggregate(cfg, run_id, agg, applied)

        log.info("stage 3/4 fit: label model on the driver from %s",
                 f"{len(agg.stats.patterns)} patterns" if agg.stats.patterns is not None else
                 f"overlap moments ({agg.n_patterns} distinct patterns > aggregate.max_patterns)")
        fitted = fit_label_model.run(cfg, run_id=run_id, stats=agg.stats, gold_counts=agg.gold_counts,
                                     lf_versions=applied.lf_versions, gold_sets=agg.gold_sets,
                                     lf_info=lf_info(applied), label_space=applied.label_space)
        timings["fit"] = fitted.seconds
        # Before the model is logged and any label is written: a drift failure publishes nothing.
        drift = drift_check(cfg, run_id, agg.stats, fitted.model, list(applied.label_space))
        metrics = dict(fitted.metrics)
        holdout = evaluate_holdout(spark, cfg, registry, fitted.model, source=held_out)
        metrics.update(holdout)
        model_uri = None
        if cfg.mlflow.enabled:
            model_uri = tracking.log_fit(cfg, fitted, list(applied.lf_names), list(applied.label_space))
            if holdout:
                import mlflow

                mlflow.log_metrics(holdout)

        log.info("stage 4/4 write: labels for %d rows", applied.n_rows)
        written = write_labels.run(spark, cfg, run_id=run_id, applied=applied, fitted=fitted, source=source,
                                   model_uri=model_uri, rows=shared)
        timings["write"] = written.seconds
        timings["total"] = time.perf_counter() - t0
        summary = {
            "run_id": run_id,
            "status": "succeeded",
            "reused": False,  # True when a rerun with one run id and the same inputs changed nothing
            "lakehouse": str(cfg.lakehouse_path),  # where the tables below were (a moved lakehouse: jobs.changes.runs)
            "source": applied.source_summary(),
            "tables": {
                "votes": {"path": applied.votes_table, "version": applied.votes_version, "reused": applied.skipped},
                "labels": {"path": written.labels_table, "version": written.labels_version, "rows": written.n_rows},
            },
            # What this run's apply computed (incremental apply: README "Incremental apply and verify").
            "apply": {"applied_lfs": list(applied.applied_lfs), "reused_lfs": list(applied.reused_lfs),
                      "applied_rows": applied.applied_rows, "row_changes": applied.row_changes},
            "lfs": lf_summaries(applied),
            "label_model": {"path": fitted.model_path, "version": fitted.model_version, "mlflow_uri": model_uri,
                            "method": cfg.label_model.method},
            "tie_break_policy": cfg.output.tie_break_policy,
            "label_space": list(applied.label_space),
            "fingerprint": applied.fingerprint,
            "settings": settings_fingerprint(cfg),
            "metrics": metrics,
            "mlflow": {"run_id": mlflow_run_id, "tracking_uri": tracking.tracking_uri(cfg) if cfg.mlflow.enabled else None,
                       "experiment": cfg.mlflow.experiment},
            "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        }
        if drift is not None:
            summary["drift"] = drift
        if cfg.report.enabled:
            from jobs import report

            log.info("report: analysis and HTML report of run %s", run_id)
            reported = report.run(spark, cfg, run_id=run_id)
            summary.update(analysis=reported["analysis"], report=reported["report"])
            summary["timings_seconds"]["report"] = reported["timings_seconds"]["report"]
        compaction.compact_into(summary, cfg, io, source.df)  # before the run reports success
        if cfg.mlflow.enabled:  # before the summary says "succeeded": a failure here puts the tables back
            tracking.log_write(cfg, written, summary)
        write_json(run_dir(cfg.lakehouse, run_id) / "summary.json", summary)
        mark_done(cfg.lakehouse, run_id)
        status = "FINISHED"
        log.info("pipeline: done in %.1fs (apply %.1fs, aggregate %.1fs, fit %.2fs, write %.1fs)", timings["total"],
                 timings["apply"], timings["aggregate"], timings["fit"], timings["write"])
        return PipelineResult(run_id, summary)
    except BaseException as err:
        # A later stage failed after an earlier one committed: put the tables back, so every
        # table is where it was before this run. Ctrl-C and SIGTERM (jobs.runtime.signals turns
        # it into an exception) unwind through here too, and mark the MLflow run KILLED.
        status = "KILLED" if signals.stopped_by_signal(err) else "FAILED"
        reason = f"run {run_id} {'failed' if status == 'FAILED' else 'was interrupted'}"
        signals.forget_commits()  # this run puts its commits back below; a failed restore says so itself
        if written is not None and not written.skipped and written.labels_version != labels_before:
            signals.put_back(f"labels {labels_path} v{written.labels_version}",
                             lambda: io.restore_table(labels_path, labels_before, reason=reason))
        if applied is not None and not applied.skipped and applied.votes_version != votes_before:
            signals.put_back(f"votes {votes_path} v{applied.votes_version}",
                             lambda: io.restore_table(votes_path, votes_before, reason=reason))
            signals.put_back(incremental.row_hashes_named(cfg, io),
                             lambda: incremental.restore_row_hashes(cfg, io, hashes_before, reason))
        if handed_on:
            mark_failed(cfg.lakehouse, run_id, status == "KILLED", signals.signal_name() or str(err))
        stop = signals.signal_error(err)
        if stop is not err:
            raise stop from err
        raise
    finally:
        if shared is not None:
            shared.unpersist()
        apply_lfs.retire_masks(cfg, io, applied, replaced_masks)
        clear_description(spark)
        if cfg.mlflow.enabled:
            tracking.end_run(cfg, status, failing=status != "FINISHED")


def settings_fingerprint(cfg: PipelineConfig) -> str:
    """A hash of the settings that decide the labels from given votes: the label model's and the output's."""
    data = {key: cfg.to_dict().get(key) for key in ("label_model", "output")}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _completed(cfg: PipelineConfig, run_id: str, fingerprint: str, io: Any) -> dict[str, Any] | None:
    """The summary of ``run_id`` if it finished on the same inputs and both tables are unchanged.

    Unchanged: the tables hold the rows of the versions the summary names; data-neutral commits
    since (OPTIMIZE, VACUUM: Databricks auto compaction adds them) do not count as changes.
    """
    path = run_dir(cfg.lakehouse, run_id, create=False) / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    tables = summary.get("tables", {})
    if summary.get("status") != "succeeded":
        return None  # a retry of a failed run: nothing of it to keep
    failed = failed_run(cfg.lakehouse, run_id)
    if failed is not None:  # a later attempt (other settings, --force) left its statistics and model in the folder
        log.info("pipeline: run %s succeeded, but a later attempt of it %s after it aggregated (%s): running it again",
                 run_id, failed["ended"], failed["reason"])
        return None
    if summary.get("fingerprint") != fingerprint:
        why = "other inputs (LF versions, the source or how it is read)"
    elif summary.get("settings") != settings_fingerprint(cfg):
        why = "other label_model or output settings"
    elif not (io.unchanged_since(cfg.table_path("votes"), tables.get("votes", {}).get("version"))
              and io.unchanged_since(cfg.table_path("labels"), tables.get("labels", {}).get("version"))):
        why = "the same inputs, but later runs wrote the tables since"
    else:
        return summary
    # The rerun recomputes and this id's record then names the new labels: say so, since `diff`,
    # `explain --run-id` and `verify --run-id` read runs by id.
    log.warning("run id %s already names a run that succeeded with %s (labels v%s); this run replaces its "
                "record. Use a new --run-id to keep both", run_id, why, tables.get("labels", {}).get("version"))
    return None


def _force_option(p: Any) -> None:
    p.add_argument("--force", action="store_true", help="recompute votes even when they are up to date")


def done_line(summary: dict[str, Any]) -> str:
    """The command's one stdout line: the run, the labels table version and rows, the votes version they were built
    from, what was reused, and the tables the run compacted after (their new versions)."""
    tables = summary.get("tables") or {}
    labels, votes = tables.get("labels") or {}, tables.get("votes") or {}
    line = (f"lakelabel run: run {summary['run_id']}: {labels.get('rows', 0):,} labels in {labels.get('path')} "
            f"(v{labels.get('version')}), votes v{votes.get('version')}")
    if summary.get("reused"):
        return line + " (already done with these inputs: nothing ran)"
    line += " (reused)" if votes.get("reused") else ""
    return line + compaction.compaction_line(summary.get("compaction", []))


def _precheck(args: Any, cfg: PipelineConfig) -> None:
    """The LFs (:func:`jobs.apply_lfs.check_lfs`), then the label model's settings against their label
    space, so a ``label_model.class_balance`` of the wrong length fails before Spark starts; with
    ``report.enabled``, the slice modules the report will import."""
    apply_lfs.check_lfs(args, cfg)
    if cfg.report.enabled:
        load_slices(cfg.slices.modules)
    space = getattr(args.registry, "label_space", None)
    if space and not is_multitask(cfg):
        fit_label_model.make_label_model(cfg, len(space))


COMMAND = command.Command(
    logs_to_mlflow=True, writes=("votes", "labels"),
    name="run", help="the whole pipeline: apply, aggregate, fit, write", add_arguments=_force_option, done=done_line,
    precheck=_precheck, reads_source=True, reads_evaluation=True,
    run=lambda args, cfg, run_id, spark: run(spark, cfg, run_id=run_id, force=args.force,
                                             registry=args.registry).summary,
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
