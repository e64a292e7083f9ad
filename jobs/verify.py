"""Verify job: rebuild the labels a past run wrote and check the labels table still holds them.

``lakelabel verify --config C --run-id R`` reads run R's summary from its run folder
(``summary.json`` of ``lakelabel run`` or ``write_summary.json`` of ``lakelabel write``, the one naming the later
labels version when both are there) for
the labels and votes versions it committed, then rebuilds its labels from:

* the votes table at that version (Delta time travel) and the apply summary stored in that
  commit (LF names, versions, label space, source version);
* the source at the version the votes came from (time travel for Delta sources; a Parquet or
  CSV source must still have the same files, else the run cannot be rebuilt and verify says so);
* the label model the labels name: the model file in the run folder when it is there, else the
  MLflow model URI, checked against the model version the labels record.

It scores the rows exactly as ``lakelabel write`` does and compares them with the labels table
at the run's version, row by row: the same ids, labels, voters, vote counts, and probabilities
within 1e-12. Exit 0 with a summary when they match; exit 2 with one line naming what differs.
Both Delta IO paths time travel alike (``read_table(version=...)``, ``read_metadata_at``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_type

from jobs import delta_io
from jobs.aggregate import row_patterns
from jobs.apply_record import VOTES_META_KEY, ApplyResult
from jobs.changes.runs import moved_from, written_under
from jobs.delta_io.errors import SourceReadError
from jobs.delta_io.sources import load_source
from jobs.fit_label_model import MLFLOW_SCHEMES, MODEL_FILE, model_from_mlflow, model_versions, scored_as_before
from jobs.runtime import command, tracking
from jobs.runtime.config import PipelineConfig
from jobs.runtime.runs import run_dir
from jobs.write_labels import LABELS_META_KEY, score_rows
from lf_library.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

# Probabilities are recomputed by the same code on the same inputs; allow only float noise.
PROB_TOLERANCE = 1e-12
_SUMMARIES = ("summary.json", "write_summary.json")


def _of_table(cfg: PipelineConfig, summary: dict[str, Any], labels_path: str) -> bool:
    """Whether a run's summary names the labels table at ``labels_path``, also from before a move of the lakehouse."""
    named = str(summary.get("tables", {}).get("labels", {}).get("path"))
    lakehouse = str(cfg.lakehouse_path)
    return named == labels_path or moved_from(named, labels_path, lakehouse, written_under(summary)) is not None


def _run_summary(cfg: PipelineConfig, run_id: str, labels_path: str | None = None) -> tuple[Path, dict[str, Any]]:
    folder = run_dir(cfg.lakehouse, run_id, create=False)
    labels_path = labels_path or cfg.table_path("labels")
    found = []
    for name in _SUMMARIES:
        path = folder / name
        if path.exists():
            summary = json.loads(path.read_text())
            labels = summary.get("tables", {}).get("labels", {})
            if labels.get("version") is not None:
                found.append((_of_table(cfg, summary, labels_path), int(labels["version"]), path, summary))
    if found:  # `run` then `write --run-id` of it (or the reverse): the labels it wrote last, of this labels table
        _, _, path, summary = max(found, key=lambda f: f[:2])
        return path, summary
    raise ConfigError(
        f"run {run_id!r} has no summary with a labels version in {folder} ({' or '.join(_SUMMARIES)}); "
        f"pass the run id of a `lakelabel run` or `lakelabel write` that committed labels"
    )


def _load_model(cfg: PipelineConfig, meta: dict[str, Any], folder: Path) -> tuple[Any, Path]:
    """The label model the labels name and its file, from the run folder or MLflow; checked against their model
    version."""
    from labelmodel import LabelModel

    where = str(meta.get("label_model") or "")
    in_mlflow = where.startswith(MLFLOW_SCHEMES)
    candidates = [Path(where)] if where and not in_mlflow else []
    candidates.append(folder / MODEL_FILE)
    wanted, replaced = meta.get("label_model_version"), None
    for path in candidates:
        if path.exists():
            model = LabelModel.load(str(path))
            versions = model_versions(model, path)
            if wanted in versions:
                return model, path
            replaced = replaced or (str(path), versions[0])
    # The lakehouse's store, as fit logged it: also when a later fit of the run replaced the folder's file.
    if in_mlflow and (found := model_from_mlflow(cfg, where, wanted)) is not None:
        return found
    if replaced:
        origin, version = replaced
        raise InputDataError(
            f"label model {origin} has version {version}, but the labels were written by version {wanted}: the "
            f"saved model was replaced, so the run cannot be rebuilt"
        )
    if in_mlflow:
        raise InputDataError(f"the label model {where} (version {wanted}) of these labels is not in the MLflow store "
                             f"{tracking.tracking_uri(cfg)} and {folder} has no {MODEL_FILE}; the run cannot be "
                             f"rebuilt")
    raise InputDataError(f"the label model {where or '(none recorded)'} of these labels is gone and {folder} "
                         f"has no {MODEL_FILE}; the run cannot be rebuilt")


def _differences(stored: DataFrame, rebuilt: DataFrame) -> tuple[dict[str, int], Any]:
    """Counts of rows that differ, per kind, and one example row."""
    a = stored.select(F.col("row_id").alias("id"), F.struct("label", "n_votes", "voting_lfs", "probabilities").alias("s"))
    b = rebuilt.select(F.col("row_id").alias("id"), F.struct("label", "n_votes", "voting_lfs", "probabilities").alias("r"))
    j = a.join(b, "id", "full_outer")
    gap = F.aggregate(F.zip_with("s.probabilities", "r.probabilities", lambda x, y: F.abs(x - y)),
                      F.lit(0.0), lambda acc, d: F.greatest(acc, F.coalesce(d, F.lit(1.0))))
    kind = (F.when(F.col("s").isNull(), "missing from the labels table")
            .when(F.col("r").isNull(), "not in the rebuild")
            .when(F.col("s.label") != F.col("r.label"), "label")
            .when(F.col("s.n_votes") != F.col("r.n_votes"), "n_votes")
            .when(F.col("s.voting_lfs") != F.col("r.voting_lfs"), "voting_lfs")
            .when((F.size("s.probabilities") != F.size("r.probabilities")) | (gap > PROB_TOLERANCE), "probabilities"))
    diff = j.select("id", kind.alias("kind"), "s", "r").where(F.col("kind").isNotNull()).cache()
    try:
        counts = {r["kind"]: int(r["n"]) for r in diff.groupBy("kind").agg(F.count(F.lit(1)).alias("n")).collect()}
        example = diff.orderBy(F.col("id").cast("string")).first() if counts else None
    finally:
        diff.unpersist()
    return counts, example


def _source_then(spark: SparkSession, cfg: PipelineConfig, io: Any, applied: ApplyResult, run_id: str) -> Any:
    """The source as the votes ``applied`` describes read it (time travel for a Delta source), or fail."""
    source_cfg = cfg.source
    if applied.source_format == "delta" and applied.source_version is not None:
        source_cfg = replace(source_cfg, options={**source_cfg.options, "versionAsOf": str(applied.source_version)})
    source = load_source(spark, source_cfg, io=io)
    if source.info.fingerprint != applied.source_fingerprint:
        raise InputDataError(
            f"source {source.info.path} is not what run {run_id}'s votes came from (now {source.info.fingerprint}, "
            f"then {applied.source_fingerprint}); a non-Delta source cannot be read as it was, so the run cannot be "
            f"rebuilt"
        )
    return source


def _votes_then(io: Any, cfg: PipelineConfig, votes_version: Any, what: str, run_id: str) -> ApplyResult:
    """The apply summary of the votes commit a run's labels came from."""
    votes_path = cfg.table_path("votes")
    if votes_version is None:
        raise InputDataError(f"{what} records no votes version; it cannot be rebuilt")
    try:
        applied = ApplyResult.from_json(io.read_metadata_at(votes_path, int(votes_version))[VOTES_META_KEY],
                                        table=f"the votes table {votes_path} v{votes_version}")
    except (SourceReadError, KeyError) as err:
        raise InputDataError(f"votes table {votes_path} v{votes_version} (run {run_id}) cannot be read with "
                             f"lakelabel's metadata: {err}") from None
    return replace(applied, votes_table=votes_path, votes_version=int(votes_version))


def _check_match(stored: DataFrame, rebuilt: DataFrame, what: str, run_id: str, votes_version: Any,
                 source_version: Any) -> None:  # fmt: skip
    """Fail with one line naming the differences when ``stored`` and ``rebuilt`` labels differ."""
    counts, example = _differences(stored, rebuilt)
    if not counts:
        return
    kinds = ", ".join(f"{n} row(s) {k}" if k.startswith(("missing", "not")) else f"{n} row(s) with another {k}"
                      for k, n in sorted(counts.items()))
    if example["s"] is not None and example["r"] is not None:
        detail = (f"; e.g. row id {example['id']}: stored label {example['s']['label']} "
                  f"{list(example['s']['probabilities'])}, rebuilt {example['r']['label']} "
                  f"{list(example['r']['probabilities'])}")
    else:
        detail = f"; e.g. row id {example['id']}"
    # A Parquet or CSV source has no version ("source vNone"): it is named without one.
    source = "the source" if source_version is None else f"source v{source_version}"
    raise InputDataError(f"{what} does not match run {run_id}'s rebuild from votes v{votes_version} and {source}: "
                         f"{kinds}{detail}")


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None) -> dict[str, Any]:
    """Rebuild run ``run_id``'s labels and compare them with the labels table at its version."""
    started = time.perf_counter()
    if not run_id:
        raise ConfigError("verify needs --run-id: the run whose labels to rebuild and check")
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    summary_path, summary = _run_summary(cfg, run_id)
    labels_path, labels_version = cfg.table_path("labels"), int(summary["tables"]["labels"]["version"])
    try:
        labels_meta = json.loads(io.read_metadata_at(labels_path, labels_version)[LABELS_META_KEY])
    except (SourceReadError, KeyError) as err:
        raise InputDataError(f"labels table {labels_path} v{labels_version} (run {run_id}) cannot be read with "
                             f"lakelabel's metadata: {err}") from None
    votes_path, votes_version = cfg.table_path("votes"), labels_meta.get("votes_version")
    applied = _votes_then(io, cfg, votes_version, f"labels table {labels_path} v{labels_version}", run_id)
    source = _source_then(spark, cfg, io, applied, run_id)
    model, model_file = _load_model(cfg, labels_meta, run_dir(cfg.lakehouse, run_id, create=False))
    lineage = {key: labels_meta.get(key) for key in ("run_id", "label_model", "label_model_version", "source_table",
                                                      "source_version", "votes_version")}
    def rebuild(model_json: str) -> DataFrame:
        return score_rows(
            row_patterns(spark, applied, source, io),
            model_json=model_json,
            lf_names=applied.lf_names,
            lf_versions=applied.lf_versions,
            label_space=applied.label_space,
            tie_break_policy=labels_meta["tie_break_policy"],
            lineage=lineage,
            row_id_type=to_arrow_type(source.df.schema[source.id_column].dataType),
        )

    stored = io.read_table(spark, labels_path, version=labels_version)
    what = f"labels table {labels_path} v{labels_version}"
    try:
        _check_match(stored, rebuild(json.dumps(model.to_dict())), what, run_id, votes_version, applied.source_version)
    except InputDataError as mismatch:
        earlier = scored_as_before(model, labels_meta.get("label_model_version"), model_file)
        if earlier is None:
            raise
        try:
            _check_match(stored, rebuild(json.dumps(earlier.to_dict())), what, run_id, votes_version,
                         applied.source_version)
        except InputDataError:
            raise mismatch from None
        log.info("verify: run %s's label model was saved by a lakelabel before 2026-12-02, which scored with it as "
                 "then (every row against the predicted class prior, unvoted rows labeled); its labels were rebuilt "
                 "that way", run_id)
    tables = {"source": {"path": source.info.path, "version": source.info.version},
              "votes": {"path": votes_path, "version": int(votes_version)},
              "labels": {"path": labels_path, "version": labels_version}}  # fmt: skip
    n = stored.count()
    seconds = time.perf_counter() - started
    log.info("verify: run %s: %d labels in %s v%s match their rebuild (%.1fs)", run_id, n, labels_path,
             labels_version, seconds)
    return {
        "run_id": run_id, "stage": "verify", "status": "succeeded", "skipped": False, "verified": True,
        "tables": tables, "counts": {"rows": n, "differences": 0},
        "label_model": {"path": labels_meta.get("label_model"), "version": labels_meta.get("label_model_version")},
        "run_summary": str(summary_path), "timings_seconds": {"verify": round(seconds, 3)},
    }  # fmt: skip


def run_task(spark: SparkSession, cfg: PipelineConfig, view: Any, *, run_id: str | None) -> dict[str, Any]:
    """:func:`run` for one task of a multi-task run (``--task``): its column of ``<tables.labels>_tasks``.

    The task's labels at the run's version (:func:`jobs.task_views.view_labels`, the single-task
    schema) are compared with a rebuild from the votes at the version they came from, scored by
    the task's label model (``tasks/<task>/`` of the run folder, else its MLflow URI) over the
    task's LFs as that commit lists them.
    """
    from jobs import multitask_labels
    from jobs.aggregate import pattern_frame
    from jobs.task_views import task_fit_run, view_labels

    started = time.perf_counter()
    if not run_id:
        raise ConfigError("verify needs --run-id: the run whose labels to rebuild and check")
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    labels_path = multitask_labels.labels_path(cfg)
    summary_path, summary = _run_summary(cfg, run_id, labels_path)
    labels_version = int(summary["tables"]["labels"]["version"])
    if not _of_table(cfg, summary, labels_path) or view.name not in summary.get("tasks", {}):
        raise ConfigError(f"run {run_id!r} did not label task {view.name!r} in {labels_path} (its summary "
                          f"{summary_path} names {summary['tables']['labels'].get('path')}); pass the run id of a "
                          f"`lakelabel run` of this config")
    meta = multitask_labels.read_labels_metadata(io, labels_path, labels_version)
    if view.name not in meta["tasks"]:
        raise ConfigError(f"task {view.name!r} is not in {labels_path} v{labels_version}; its tasks: "
                          f"{', '.join(meta['tasks'])}")
    mine = meta["tasks"][view.name]
    what = f"labels of task {view.name!r} in {labels_path} v{labels_version}"
    applied = _votes_then(io, cfg, meta.get("votes_version"), what, run_id)
    source = _source_then(spark, cfg, io, applied, run_id)
    model, _ = _load_model(cfg, mine, run_dir(cfg.lakehouse, task_fit_run(run_id, view), create=False))
    lf_names = [name for name, _ in mine["lfs"]]
    ids = source.df.select(F.col(source.id_column).alias("row_id"), F.lit(-1).alias("gold"))
    votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
    lineage = {"run_id": meta["run_id"], "label_model": mine["label_model"],
               "label_model_version": mine["label_model_version"], "source_table": meta.get("source_table"),
               "source_version": meta.get("source_version"), "votes_version": meta.get("votes_version")}  # fmt: skip
    rebuilt = score_rows(
        pattern_frame(votes, ids, lf_names, len(mine["label_space"])),
        model_json=json.dumps(model.to_dict()), lf_names=lf_names, lf_versions=dict(mine["lfs"]),
        label_space=mine["label_space"], tie_break_policy=meta["tie_break_policy"], lineage=lineage,
        row_id_type=to_arrow_type(source.df.schema[source.id_column].dataType),
    )  # fmt: skip
    stored = view_labels(spark, view, io, version=labels_version)
    _check_match(stored, rebuilt, what, run_id, applied.votes_version, applied.source_version)
    n = stored.count()
    seconds = time.perf_counter() - started
    log.info("verify: run %s: %d labels of task %s in %s v%s match their rebuild (%.1fs)", run_id, n, view.name,
             labels_path, labels_version, seconds)
    return {
        "run_id": run_id, "stage": "verify", "status": "succeeded", "skipped": False, "verified": True,
        "task": view.name,
        "tables": {"source": {"path": source.info.path, "version": source.info.version},
                   "votes": {"path": applied.votes_table, "version": applied.votes_version},
                   "labels": {"path": labels_path, "version": labels_version, "column": view.name}},
        "counts": {"rows": n, "differences": 0},
        "label_model": {"path": mine["label_model"], "version": mine["label_model_version"]},
        "run_summary": str(summary_path), "timings_seconds": {"verify": round(seconds, 3)},
    }  # fmt: skip


def _options(p: Any) -> None:
    from jobs.task_views import add_task_option

    add_task_option(p, every=False)


def _precheck(args: Any, cfg: PipelineConfig) -> None:
    from jobs.task_views import one_task

    one_task(cfg, args.task, command="verify")  # a missing or unknown --task fails before Spark starts
    if not args.run_id:
        raise ConfigError("verify needs --run-id R: the run whose labels to rebuild and check "
                          "(its run folder under the lakehouse); see lakelabel verify --help")
    _run_summary(cfg, args.run_id)  # a run that committed no labels fails here, not after Spark's start


def _run(args: Any, cfg: PipelineConfig, run_id: str | None, spark: SparkSession) -> dict[str, Any]:
    from jobs.task_views import one_task

    view = one_task(cfg, args.task, command="verify")
    return run(spark, cfg, run_id=run_id) if view is None else run_task(spark, cfg, view, run_id=run_id)


COMMAND = command.Command(
    name="verify", help="rebuild the labels run --run-id wrote (time travel) and check the labels table matches",
    new_run_id=False, run_id_help="the run whose labels to rebuild and check (required)",
    run=_run, add_arguments=_options, precheck=_precheck,
    done=lambda s: (f"lakelabel verify: run {s['run_id']}: {s['counts']['rows']} labels"
                    f"{' of task ' + s['task'] if s.get('task') else ''} match their rebuild"),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
