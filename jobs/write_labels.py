"""Write job: probabilistic labels with lineage, scored on executors, committed to Delta.

The fitted model (a few KB of JSON) is broadcast; each executor rebuilds dense vote batches
from the votes table and calls ``predict_proba``. Every source row gets a label row, including
rows where all LFs abstained (they get the class prior, ``n_votes = 0`` and label -1 unless the
label model config sets ``label_unvoted``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_type

from jobs import delta_io
from jobs.runtime import command, signals
from jobs.runtime.runs import failed_run, latest_run_with, run_dir
from jobs.stages import Outcome, finish, votes_table
from jobs.runtime.config import PipelineConfig
from jobs.runtime.progress import Progress
from jobs.runtime.session import describe
from jobs.delta_io.sources import Source, load_source
from jobs.aggregate import MASK, row_masks
from jobs.apply_record import ApplyResult, check_lfs_unchanged, check_source_unchanged, load_apply_result
from jobs.delta_io.files import is_local_path
from jobs.runtime.lf_sources import build_registry
from lf_library.errors import ConfigError
from jobs.fit_label_model import FitResult, label_model_settings, load_fit

log = logging.getLogger(__name__)

LABELS_META_KEY = "lakelabel.write"


def labels_schema(row_id_type: pa.DataType) -> pa.Schema:
    """Schema of the labels table (identical on every write path)."""
    return pa.schema(
        [
            pa.field("row_id", row_id_type, nullable=False),
            pa.field("probabilities", pa.list_(pa.float64())),
            pa.field("label", pa.int32()),
            pa.field("label_name", pa.string()),
            pa.field("confidence", pa.float64()),
            pa.field("n_votes", pa.int32()),
            pa.field("voting_lfs", pa.list_(pa.string())),
            pa.field("run_id", pa.string()),
            pa.field("label_model", pa.string()),
            pa.field("label_model_version", pa.string()),
            pa.field("tie_break_policy", pa.string()),
            pa.field("source_table", pa.string()),
            pa.field("source_version", pa.int64()),
            pa.field("votes_version", pa.int64()),
            # The row's votes as sorted codes lf_index * k + class (LFs in the order of the votes commit's
            # apply summary): what the label model scored; lakelabel analyze reads it instead of the votes.
            pa.field("vote_codes", pa.list_(pa.int32())),
        ]
    )


@dataclass(frozen=True)
class WriteResult:
    labels_table: str
    labels_version: int | None
    n_rows: int
    skipped: bool
    seconds: float


def score_rows(
    rows: DataFrame,
    *,
    model_json: str,
    lf_names: Sequence[str],
    lf_versions: dict[str, str],
    label_space: Sequence[str],
    tie_break_policy: str,
    lineage: dict[str, object],
    row_id_type: pa.DataType,
    rows_done: Any = None,
) -> DataFrame:
    """Labels for :func:`jobs.aggregate.pattern_frame` rows (``row_id, pattern, gold``).

    ``rows_done``: a Spark accumulator the tasks add their row counts to (progress lines).
    """
    score_partition, schema = score_function(
        rows.sparkSession, model_json=model_json, lf_names=lf_names, lf_versions=lf_versions, label_space=label_space,
        tie_break_policy=tie_break_policy, lineage=lineage, row_id_type=row_id_type, rows_done=rows_done)
    return rows.select("row_id", "pattern" if "pattern" in rows.columns else MASK).mapInArrow(score_partition, schema)


def score_function(
    spark: SparkSession,
    *,
    model_json: str,
    lf_names: Sequence[str],
    lf_versions: dict[str, str],
    label_space: Sequence[str],
    tie_break_policy: str,
    lineage: dict[str, object],
    row_id_type: pa.DataType,
    rows_done: Any = None,
) -> tuple[Any, Any]:
    """``(function, Spark schema)`` of :func:`score_rows`: ``mapInArrow`` over ``row_id, pattern`` batches.

    Passed to a Delta write as its ``transform``, the labels are scored in the task that writes them.
    """
    schema = labels_schema(row_id_type)
    k, m = len(label_space), len(lf_names)
    voter_names = pa.array([f"{n}@{lf_versions.get(n, '')}" for n in lf_names], pa.string())
    names = np.array(list(label_space) + [None], dtype=object)
    payload = spark.sparkContext.broadcast(model_json)
    const = {key: lineage.get(key) for key in ("run_id", "label_model", "label_model_version",
                                                  "source_table", "source_version", "votes_version")}

    def score_partition(batches):
        from labelmodel import LabelModel

        model = LabelModel.from_dict(json.loads(payload.value))
        for batch in batches:
            b = batch.num_rows
            if b == 0:
                continue
            offsets, codes = batch_codes(batch, m * k)
            lengths = np.diff(offsets)
            row_index = np.repeat(np.arange(b), lengths)
            L = np.full((b, m), -1, dtype=np.int64)
            L[row_index, codes // k] = codes % k
            row_ids = batch.column("row_id")
            # Only the "random" policy reads the ids (it hashes them); skip the conversion otherwise.
            ids = np.asarray(row_ids.to_pylist(), dtype=object) if tie_break_policy == "random" else None
            label, probs = model.predict(L, tie_break_policy=tie_break_policy, row_ids=ids, return_probs=True)
            # The voters' names as one list array over the codes (no Python object per row).
            arrow_offsets = pa.array(offsets, pa.int32())
            voting = pa.ListArray.from_arrays(arrow_offsets, voter_names.take(pa.array(codes // k)))
            columns = [
                row_ids.cast(row_id_type),
                pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel(), pa.float64()), k).cast(pa.list_(pa.float64())),
                pa.array(label, pa.int32()),
                pa.array(names[label], pa.string()),
                pa.array(probs.max(axis=1), pa.float64()),
                pa.array(lengths, pa.int32()),
                voting,
            ]
            for key in ("run_id", "label_model", "label_model_version"):
                columns.append(pa.repeat(pa.scalar(const[key], pa.string()), b))
            columns.append(pa.repeat(pa.scalar(tie_break_policy, pa.string()), b))
            columns.append(pa.repeat(pa.scalar(const["source_table"], pa.string()), b))
            for key in ("source_version", "votes_version"):
                columns.append(pa.repeat(pa.scalar(const[key], pa.int64()), b))
            columns.append(pa.ListArray.from_arrays(arrow_offsets, pa.array(codes, pa.int32())))
            if rows_done is not None:
                rows_done.add(b)
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return score_partition, from_arrow_schema(schema)


def batch_codes(batch: pa.RecordBatch, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, codes)`` of a batch's vote patterns: its ``pattern`` list column, else its
    :data:`jobs.aggregate.MASK` bitmask column (bit ``c`` set: code ``c``); offsets start at 0."""
    if "pattern" in batch.schema.names:
        pattern = batch.column("pattern")
        offsets = pattern.offsets.to_numpy().astype(np.int64)
        codes = pattern.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]].astype(np.int64)
        return offsets - offsets[0], codes
    mask = batch.column(MASK).to_numpy(zero_copy_only=False).astype(np.int64)
    bits = (mask[:, None] >> np.arange(n_codes, dtype=np.int64)) & 1
    rows, codes = np.nonzero(bits)
    offsets = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(mask)), out=offsets[1:])
    return offsets, codes.astype(np.int64)


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    *,
    run_id: str,
    applied: ApplyResult | None = None,
    fitted: FitResult | None = None,
    source: Source | None = None,
    model_uri: str | None = None,
    model_run_id: str | None = None,
    rows: DataFrame | None = None,
) -> WriteResult:
    """Score every source row and replace the labels table in one Delta transaction.

    Without ``fitted``, the model saved by the fit stage of ``model_run_id`` is used (default:
    the latest fitted run). Rewriting the labels of the same run, votes and model is a no-op.
    """
    started = time.perf_counter()
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    applied = applied or load_apply_result(cfg, io)
    fitted = fitted or load_fit(cfg, model_run_id)
    if source is None:
        source = load_source(spark, cfg.source, io=io)
        check_source_unchanged(applied, source)
    model_lfs = list(getattr(fitted.model, "lf_names", None) or [])
    fitted_versions = {row["lf"]: row.get("version") for row in fitted.lf_table}  # "" before versions were kept
    edited = sorted(name for name, version in fitted_versions.items()
                    if version and applied.lf_versions.get(name, version) != version)
    if model_lfs and model_lfs != list(applied.lf_names):
        differs = f"the votes are of {list(applied.lf_names)}"
    elif edited:
        differs = f"edited since the fit: {edited}"
    else:
        differs = None
    if differs:
        raise ConfigError(
            f"the label model ({fitted.model_path}) was fitted on LFs {model_lfs or sorted(fitted_versions)}, but "
            f"the votes table {applied.votes_table} holds other votes ({differs}); run `lakelabel aggregate` and "
            f"`lakelabel fit` on these votes first (or `lakelabel run`)"
        )
    if fitted.settings is not None and fitted.settings != label_model_settings(cfg):
        log.warning("write: the label_model settings are not those run %s's model was fitted with; the labels use "
                    "that model (run `lakelabel fit` to fit one with these settings)", Path(fitted.model_path).parent.name)
    labels_path = cfg.table_path("labels")
    previous = io.read_metadata(labels_path) if io.table_exists(labels_path) else {}
    if LABELS_META_KEY in previous:
        prior = json.loads(previous[LABELS_META_KEY])
        _warn_reordered_gold_ids(prior.get("label_space"), list(applied.label_space), source, labels_path)
        same_votes = prior.get("votes_version") == applied.votes_version or (
            prior.get("votes_version") is not None and io.unchanged_since(applied.votes_table, prior["votes_version"])
        )  # an OPTIMIZE or VACUUM of the votes since does not change them
        same = (prior.get("run_id"), prior.get("label_model_version"), prior.get("tie_break_policy"))
        if same_votes and same == (run_id, fitted.model_version, cfg.output.tie_break_policy):
            version = io.table_version(labels_path)
            log.info("write: run %s already wrote these labels (v%s); nothing to do", run_id, version)
            return WriteResult(labels_path, version, applied.n_rows, True, time.perf_counter() - started)
    if rows is None:  # jobs.multitask passes each task's rows from one grouping of the votes
        rows = row_masks(spark, applied, source, io)  # patterns as bitmasks, decoded while scoring
    lineage = {
        "run_id": run_id,
        "label_model": model_uri or fitted.model_path,
        "label_model_version": fitted.model_version,
        "source_table": applied.source_path,
        "source_version": applied.source_version,
        "votes_version": applied.votes_version,
    }
    row_id_type = to_arrow_type(source.df.schema[source.id_column].dataType)
    score = score_function(
        spark,
        model_json=json.dumps(fitted.model.to_dict()),
        lf_names=applied.lf_names,
        lf_versions=applied.lf_versions,
        label_space=applied.label_space,
        tie_break_policy=cfg.output.tie_break_policy,
        lineage=lineage,
        row_id_type=row_id_type,
        rows_done=(rows_done := spark.sparkContext.accumulator(0)),
    )
    describe(spark, "write", f"labels for {applied.n_rows} rows")
    meta = {
        LABELS_META_KEY: json.dumps(
            {
                **lineage,
                "lfs": applied.lf_versions,
                "label_space": list(applied.label_space),
                "tie_break_policy": cfg.output.tie_break_policy,
                "metrics": fitted.metrics,
            },
            sort_keys=True,
            default=str,
        ),
        "lakelabel.run_id": run_id,
    }
    with Progress(spark, "write", applied.n_rows, rows_done):
        result = io.write_table(
            rows.select("row_id", "pattern" if "pattern" in rows.columns else MASK),  # scored in the writing tasks
            labels_path,
            mode="overwrite",
            commit_metadata=meta,
            description=f"lakelabel write: labels to {labels_path}",
            overwrite_schema=True,
            transform=score,
        )
    if not result.skipped:
        signals.note_commit(f"labels {labels_path} v{result.version}")
    seconds = time.perf_counter() - started
    if result.skipped:
        log.info("write: run %s already committed labels; nothing to do", run_id)
    else:
        log.info("write: %d labels to %s v%s in %.1fs", result.num_records, labels_path, result.version, seconds)
    return WriteResult(labels_path, result.version, result.num_records, result.skipped, seconds)


def stage(spark: SparkSession, cfg: PipelineConfig, run_id: str, model_run_id: str | None) -> Outcome:
    """The write stage as a job: labels from the model of ``model_run_id`` (default: the latest fitted run)."""
    from jobs.fit_label_model import MODEL_FILE

    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    model_run = model_run_id or latest_run_with(cfg.lakehouse, MODEL_FILE)
    fit_summary = run_dir(cfg.lakehouse, model_run, create=False) / "fit_summary.json" if model_run else None
    model_uri = None
    if fit_summary is not None and fit_summary.exists():
        model_uri = json.loads(fit_summary.read_text()).get("label_model", {}).get("mlflow_uri")
    applied = load_apply_result(cfg, io)
    if not is_local_path(applied.votes_table):  # a local table's LFs were checked before Spark started
        check_lfs_unchanged(applied, build_registry(cfg))
    written = run(spark, cfg, run_id=run_id, applied=applied, model_run_id=model_run, model_uri=model_uri)

    def log_metrics() -> None:
        import mlflow

        mlflow.log_metrics({"labels_rows": written.n_rows, "write_seconds": written.seconds})

    return Outcome(
        skipped=written.skipped,
        seconds=written.seconds,
        tables={**votes_table(applied), "labels": {"path": written.labels_table, "version": written.labels_version}},
        counts={"rows": written.n_rows},
        details={"label_model": {"run_id": model_run, "mlflow_uri": model_uri},
                 "label_space": list(applied.label_space)},
        log=(lambda: None) if written.skipped else log_metrics,
    )


def _warn_reordered_gold_ids(before: list[str] | None, now: list[str], source: Source, labels_path: str) -> None:
    """Warn when the label space is the last labels' classes in another order and the source's gold column
    holds class ids (numbers): an id is a position, so each now names another class (gold labels by name,
    the gold table's, keep theirs)."""
    gold = source.gold_column
    if not before or list(before) == now or not gold or all(
            i < len(now) and now[i] == name for i, name in enumerate(before)):  # classes added at the end: ids keep
        return
    dtype = source.df.schema[gold].dataType
    ids = isinstance(dtype, (T.IntegralType, T.FractionalType)) or (  # a CSV's "0"/"1" are read as ids too
        isinstance(dtype, T.StringType) and source.df.where(F.col(gold).rlike(r"^\d+$")).limit(1).count() > 0)
    if ids:
        log.warning("write: the label space changed since the labels table %s was last written (%s, now %s); "
                    "the gold column %r holds class ids, which are positions in the label space, so an id may now "
                    "name another class: renumber the column, or write class names in it", labels_path, before, now,
                    gold)


def _precheck(cfg: PipelineConfig, run_id: str | None) -> None:
    """Before Spark starts: a fitted model to write from, and not one a failed run left (a drift gate's)."""
    failed = failed_run(cfg.lakehouse, run_id) if run_id else None
    if failed and failed["status"] == "running":
        raise ConfigError(f"run {run_id!r} is still running ({failed['reason']}): its model has not passed the "
                          f"run's checks and its labels are not published yet; wait for it to end")
    if failed:
        raise ConfigError(
            f"run {run_id!r} {failed['ended']} after it aggregated ({failed['reason']}), so its labels were not "
            f"published; rerun it (`lakelabel run --run-id {run_id}`), or fit it again on purpose "
            f"(`lakelabel fit --run-id {run_id}`) before writing"
        )
    load_fit(cfg, run_id)  # no fitted model: say so
    if is_local_path(cfg.table_path("votes")):  # as aggregate and fit: the config's LFs are the votes'
        check_lfs_unchanged(load_apply_result(cfg), build_registry(cfg))


COMMAND = command.Command(
    logs_to_mlflow=True, writes=("labels",),
    name="write", help="write probabilistic labels with lineage", stage_summary=True,
    precheck=lambda args, cfg: _precheck(cfg, args.run_id),
    run=lambda args, cfg, run_id, spark: finish("write", cfg, run_id, stage(spark, cfg, run_id, args.run_id)),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
