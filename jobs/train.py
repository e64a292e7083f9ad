"""Train job: a Spark ML end model on the probabilistic labels (``lakelabel train``).

Reads the labels of one run (``--run-id``; default the run that wrote the labels table), joins
them with the source, expands each row some LF voted on into one row per class weighted by its
probability (:func:`jobs.endmodel.features.training_rows`) and fits the configured pipeline
(text n-grams, hashed TF-IDF, numeric and categorical columns, a classifier). It then

* scores every source row and the gold sets next to the label model and majority vote, overall
  and on the rows no LF covers (:mod:`jobs.endmodel.evaluate`);
* logs the fitted ``PipelineModel`` to the run's MLflow run (``spark`` flavor, registered as
  ``end_model.registered_name``) with its metrics and the labels-table version it learned from;
* writes the ``predictions`` Delta table in one commit: ``row_id, probabilities, label,
  label_name, confidence`` of the end model, ``lm_label, n_votes`` of the labels it learned from,
  and the lineage (run, model URI and version, classifier, labels, source);
* lists the rows where the end model and the label model disagree most and the rows it is least
  sure of (:mod:`jobs.endmodel.feedback`), in the summary and in ``train.json`` of the run folder,
  which ``lakelabel report`` draws.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import aggregate, delta_io
from jobs.analysis import inputs as analysis_inputs
from jobs.analyze import log_to_run
from jobs.endmodel import evaluate, features, registry
from jobs.endmodel.feedback import feedback
from jobs.people.gold import label_space_of
from jobs.runtime import command, signals, tracking
from jobs.runtime.config import PipelineConfig
from jobs.runtime.progress import Progress
from jobs.runtime.runs import run_dir, write_json
from jobs.runtime.session import clear_description, describe
from jobs.task_views import TaskView, add_task_option, one_task, task_file
from jobs.write_labels import LABELS_META_KEY
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

TRAIN_META_KEY = "lakelabel.train"
TRAIN_FILE = "train.json"


def check_label_space(cfg: PipelineConfig, io: Any) -> tuple[str, ...]:
    """The labels table's label space; a :class:`ConfigError` when it is not the config's."""
    path = cfg.table_path("labels")
    if not io.table_exists(path):
        raise ConfigError(f"no labels table at {path}; run the pipeline first (`lakelabel run --config ...`)")
    meta = io.read_metadata(path)
    written = json.loads(meta[LABELS_META_KEY]) if LABELS_META_KEY in meta else {}
    theirs, ours = tuple(written.get("label_space") or ()), label_space_of(cfg)
    if theirs and theirs != ours:
        raise ConfigError(f"the labels table {path} holds labels over {list(theirs)}, but this config's label space "
                          f"is {list(ours)}: point tables.labels at this config's labels, or run the pipeline first")
    return ours


def _text_columns(cfg: PipelineConfig, view: TaskView | None = None) -> list[str]:
    if cfg.end_model.text_columns is not None:
        return list(cfg.end_model.text_columns)
    from jobs.apply_lfs import build_registry, text_columns

    return text_columns(view.task.registry if view is not None else build_registry(cfg))


def _config_hash(cfg: PipelineConfig, text_columns: Sequence[str]) -> str:
    """The settings a trained model and its summary come from: ``end_model``, the text columns, and the
    ``evaluation:`` source it is scored on (another one trains again rather than keep stale scores)."""
    settings = cfg.to_dict()
    data = {**settings["end_model"], "text_columns": list(text_columns), "evaluation": settings.get("evaluation")}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _training_counts(training: DataFrame, k: int) -> dict[str, Any]:
    rows = training.groupBy(features.LABEL).agg(F.count(F.lit(1)).alias("n"), F.sum(features.WEIGHT).alias("w"),
                                                F.countDistinct("row_id").alias("ids")).collect()  # fmt: skip
    per_class = [0.0] * k
    for r in rows:
        per_class[int(r[features.LABEL])] = float(r["w"])
    labeled = training.select("row_id").distinct().count()
    return {"labeled_rows": int(labeled), "training_rows": int(sum(r["n"] for r in rows)),
            "training_weight": float(sum(per_class)), "class_weights": per_class}


def _check_enough(counts: dict[str, Any], cfg: PipelineConfig, space: Sequence[str], labels_path: str) -> None:
    e = cfg.end_model
    if counts["labeled_rows"] < e.min_labeled_rows:
        raise ConfigError(
            f"only {counts['labeled_rows']} labeled row(s) in {labels_path} to train on (rows some LF voted on"
            f"{', or all rows' if e.include_unvoted else ''}), below end_model.min_labeled_rows = {e.min_labeled_rows}: "
            f"write LFs that cover more rows, or lower end_model.min_labeled_rows")
    present = [c for c, w in zip(space, counts["class_weights"]) if w > 0]
    if len(present) < 2:
        raise ConfigError(f"the training rows carry only class(es) {present} of {list(space)}; a classifier needs two "
                          f"or more: write LFs for the other classes")


def _scored_rows(model: Any, frame: DataFrame, classifier: str) -> DataFrame:
    """``row_id, probabilities, label, confidence`` of the end model for ``frame`` (``row_id`` + feature columns)."""
    out = model.transform(frame).select("row_id", features.probabilities(classifier).alias("probabilities"),
                                        F.col("prediction").cast("int").alias("label"))  # fmt: skip
    return out.withColumn("confidence", F.array_max("probabilities"))


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None = None, task: str | None = None) -> dict[str, Any]:
    """``lakelabel train``: fit, evaluate, log and write as the module docstring says; return the summary.

    ``task``: the task of a multi-task config to train on (required for such a config). It gets
    its own predictions table ``<tables.predictions>_<task>``, ``train_<task>.json`` in the run
    folder, the MLflow artifact ``end_model_<task>`` (registered as ``<registered_name>_<task>``)
    and params and metrics prefixed ``<task>.``. A progress line (Spark tasks finished) is logged
    every 30 s while it runs.
    """
    view = one_task(cfg, task, command="train")
    describe(spark, "train", f"the end model{f' of task {task}' if view is not None else ''}")
    try:
        with Progress(spark, "train", 0):
            return _run(spark, cfg, run_id=run_id, view=view)
    finally:
        clear_description(spark)


def _run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None, view: TaskView | None) -> dict[str, Any]:
    started = time.perf_counter()
    e = cfg.end_model

    def step(what: str) -> None:
        log.info("train: %s (%.1fs)", what, time.perf_counter() - started)

    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    if view is None:
        check_label_space(cfg, io)
    found = analysis_inputs.resolve(spark, cfg, run_id, io, view=view, verb="train on")
    space, k, source = list(found.label_space), len(found.label_space), found.source
    text_cols = _text_columns(cfg, view)
    cfg = view.cfg if view is not None else cfg
    train_file = task_file(TRAIN_FILE, view)
    prefix = f"{view.name}." if view is not None else ""
    artifact = f"{registry.ARTIFACT}_{view.name}" if view is not None else registry.ARTIFACT
    registered = f"{e.registered_name}_{view.name}" if view is not None and e.registered_name else e.registered_name
    features.check_columns(e, text_cols, source.df.columns, source.info.path)
    columns = features.feature_columns(e, text_cols)
    predictions_path, config_hash = cfg.table_path("predictions"), _config_hash(cfg, text_cols)
    folder = run_dir(cfg.lakehouse, found.run_id)
    # The gold table's dev labels are training targets (end_model.use_dev_labels) and its test labels
    # a gold set: a `gold import` since the last train makes a new model, not a no-op.
    gold_path = cfg.table_path("gold")
    gold_version = io.table_version(gold_path) if io.table_exists(gold_path) else None
    previous = io.read_metadata(predictions_path) if io.table_exists(predictions_path) else {}
    if TRAIN_META_KEY in previous and (folder / train_file).exists():
        prior = json.loads(previous[TRAIN_META_KEY])
        doc = json.loads((folder / train_file).read_text())
        # The run's train record must be of the predictions' latest data commit (an OPTIMIZE since changes
        # nothing): an attempt stopped after that commit (in its MLflow logging) left the record of the
        # train before it, and is trained again.
        recorded = ((doc.get("tables") or {}).get("predictions") or {}).get("version")
        if (prior.get("run_id"), prior.get("labels_version"), prior.get("config_hash"), prior.get("gold_version")) == (
                found.run_id, found.labels_version, config_hash, gold_version) and recorded is not None and \
                io.unchanged_since(predictions_path, int(recorded)):
            log.info("train: run %s already trained on labels v%s (gold %s) with this config; nothing to do",
                     found.run_id, found.labels_version, "none" if gold_version is None else f"v{gold_version}")
            return {**doc, "skipped": True, "timings_seconds": {"train": round(time.perf_counter() - started, 3)}}
    # A scan of the source when a numeric column is a string; a no-op rerun (above) trained on it already.
    features.check_numeric(e, source.df, source.info.path)
    held_out = _held_out(spark, cfg, found, text_cols, io, view)  # checked before the fit, scored after it
    labels = found.labels(spark, io).select(
        "row_id", "probabilities", F.coalesce("label", F.lit(-1)).cast("int").alias("label"),
        F.coalesce("n_votes", F.lit(0)).alias("n_votes"))
    bad = labels.where(F.size("probabilities") != k).select("row_id", F.size("probabilities").alias("n")).first()
    if bad is not None:
        raise ConfigError(f"row {bad['row_id']!r} of the labels table {found.labels_path} has {bad['n']} probabilities, "
                          f"not one per class of {space}: the labels come from another label space; rerun the pipeline")
    source_rows = source.df.select(F.col(source.id_column).alias("row_id"), *columns)
    dev_rows = 0
    if e.use_dev_labels:
        from jobs.people.gold import current_gold

        dev = current_gold(spark, cfg, io, split="dev")
        dev_rows = dev.count() if dev is not None else 0
        if dev_rows:
            log.info("train: %d gold dev label(s) replace the label model's targets of their rows", dev_rows)
            labels_for_training = features.with_dev_labels(labels, dev, k)
    training = features.training_rows(labels_for_training if dev_rows else labels, k, targets=e.targets,
                                      include_unvoted=e.include_unvoted)
    # Iterative fits run one Spark job per iteration over every partition: as many partitions as cores.
    training = training.join(source_rows, "row_id").coalesce(max(1, spark.sparkContext.defaultParallelism))
    training = training.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {**_training_counts(training, k), "gold_dev_rows": dev_rows}
        _check_enough(counts, cfg, space, found.labels_path)
        step(f"{counts['labeled_rows']} labeled rows -> {counts['training_rows']} training rows ({e.targets})")
        model = features.build_pipeline(e, text_cols).fit(training)
        step(f"fitted {e.classifier}")
    finally:
        training.unpersist()
    scored = _scored_rows(model, source_rows, e.classifier).join(
        labels.select("row_id", F.col("probabilities").alias("lm_probabilities"), F.col("label").alias("lm_label"),
                      "n_votes"), "row_id", "left").persist(StorageLevel.MEMORY_AND_DISK)  # fmt: skip
    try:
        evaluation = _evaluate(spark, cfg, found, model, scored, text_cols, held_out, io)
        step("scored the gold sets")
        texts = source.df.select(F.col(source.id_column).alias("row_id"), F.concat_ws(" ", *[
            F.coalesce(F.col(c).cast("string"), F.lit("")) for c in text_cols]).alias("text")) if text_cols else None
        notes = feedback(scored, texts, space, e.feedback_rows)
        step(f"{notes['disagreements']} disagreements with the label model")
        doc = {
            "run_id": found.run_id, "stage": "train", "status": "succeeded", "skipped": False,
            **({"task": view.name} if view is not None else {}),
            "label_space": space, "counts": {**counts, "rows": None},
            "end_model": {"classifier": e.classifier, "targets": e.targets, "include_unvoted": e.include_unvoted,
                          "features": {"text": text_cols, "numeric": e.numeric_columns,
                                       "categorical": e.categorical_columns},
                          "registered_name": registered or None, "config_hash": config_hash},
            "evaluation": evaluation, "feedback": notes,
        }  # fmt: skip
        meta = {"run_id": found.run_id, "labels_table": found.labels_path, "labels_version": found.labels_version,
                "source_table": source.info.path, "source_version": source.info.version, "classifier": e.classifier,
                "config_hash": config_hash, "gold_version": gold_version}  # fmt: skip
        written: dict[str, Any] = {}

        def log_and_write(mlflow: Any) -> None:
            if mlflow is None:
                uri, version = registry.save_local(model, folder, artifact), found.run_id
            else:
                uri, version = registry.log_model(mlflow, model, registered_name=registered, columns=columns,
                                                  schema=source.df.schema, metadata=meta, artifact=artifact)
                # The settings this train ran with (a `train --set end_model.*` differs from the
                # config.end_model.* params the pipeline logged), and the labels it learned from.
                params = {f"{prefix}end_model.labels_table": found.labels_path,
                          f"{prefix}end_model.labels_version": str(found.labels_version)}
                tracking.flatten_params(f"{prefix}end_model", dataclasses.asdict(e), params)
                # train's --run-id names the labels' run, so a retrain with other settings logs into the same run.
                tracking.log_params_kept(mlflow, params, "train", advice=(
                    "The registered model version, the predictions table and those tags are this train's; its "
                    "metrics replace the earlier train's"))
                mlflow.log_metrics({f"{prefix}{key}": v for key, v in _metrics(evaluation, counts).items()})
            doc["end_model"].update(model_uri=uri, model_version=version)
            written.update(_write_predictions(spark, io, scored, predictions_path, space, run_id=found.run_id,
                                              uri=uri, version=version, meta=meta))
            signals.note_commit(f"predictions {predictions_path} v{written['version']}")
            doc["counts"]["rows"] = written["rows"]
            doc["tables"] = {"labels": {"path": found.labels_path, "version": found.labels_version},
                             "predictions": {"path": predictions_path, "version": written["version"]}}
            if mlflow is not None:
                mlflow.log_dict(doc, f"{registry.ARTIFACT}_train/{train_file}")

        if cfg.mlflow.enabled:
            doc["mlflow"] = log_to_run(cfg, found.run_id, log_and_write)
        else:
            log_and_write(None)
            doc["mlflow"] = {"run_id": None, "tracking_uri": None, "experiment": cfg.mlflow.experiment}
    finally:
        scored.unpersist()
    doc["timings_seconds"] = {"train": round(time.perf_counter() - started, 3)}
    write_json(folder / train_file, doc)
    step(f"predictions v{written['version']} -> {predictions_path}")
    return doc


def _held_out(spark: Any, cfg: PipelineConfig, found: Any, text_cols: list[str], io: Any,
              view: TaskView | None) -> tuple[DataFrame, Any] | str | None:
    """The ``evaluation:`` source's rows (:func:`jobs.endmodel.evaluate.evaluation_rows`, lazy), its ids and
    the end model's feature columns checked; a note when its LFs are not the run's; None without one."""
    ev = cfg.evaluation
    if ev is None or not ev.gold_column:
        return None
    got = evaluate.evaluation_rows(spark, cfg, found.lf_names, io, task=view.task if view is not None else None)
    if isinstance(got, str):
        # Not silently: on YouTube the held-out video is the number people train for.
        log.warning("train: %s; train with the LFs of the run whose labels it learns from (the same lfs "
                    "settings), or rerun the pipeline with these", got)
        return got
    ev_source = got[1]
    features.check_columns(cfg.end_model, text_cols, ev_source.df.columns, ev_source.info.path)
    features.check_numeric(cfg.end_model, ev_source.df, ev_source.info.path)
    return got


def _evaluate(spark: Any, cfg: PipelineConfig, found: Any, model: Any, scored: DataFrame, text_cols: list[str],
              held_out: tuple[DataFrame, Any] | str | None, io: Any) -> dict[str, Any]:
    """The gold sets of :mod:`jobs.endmodel.evaluate` that exist, each scored (``held_out``: :func:`_held_out`)."""
    columns = features.feature_columns(cfg.end_model, text_cols)
    label_model = found.model.model if found.model else None
    common = {"model": label_model, "lf_names": found.lf_names, "label_space": found.label_space}
    predicted = scored.select("row_id", F.col("label").alias("end_label"))
    out: dict[str, Any] = {}
    if isinstance(held_out, str):
        out["evaluation"] = {"note": held_out}
    elif held_out is not None:
        rows, ev_source = held_out
        ev_rows = ev_source.df.select(F.col(ev_source.id_column).alias("row_id"), *columns)
        ev_pred = _scored_rows(model, ev_rows, cfg.end_model.classifier).select(
            "row_id", F.col("label").alias("end_label"))
        out["evaluation"] = {"source": ev_source.info.path, **evaluate.score(rows, ev_pred, **common)}
    rows = aggregate.row_patterns(spark, found.applied, found.source, io)
    gold_rows = evaluate.gold_test_rows(spark, cfg, rows, io)
    if gold_rows is not None:
        out["gold_test"] = {"source": cfg.table_path("gold"), **evaluate.score(gold_rows, predicted, **common)}
    if found.source.gold_column:
        out["source_gold"] = {"source": found.source.info.path, **evaluate.score(rows, predicted, **common)}
    return out


def _metrics(evaluation: dict[str, Any], counts: dict[str, Any]) -> dict[str, float]:
    out = {f"end_model.{key}": float(counts[key]) for key in ("labeled_rows", "training_rows", "training_weight")}
    for where, section in evaluation.items():
        for name, subsets in (section.get("accuracy") or {}).items():
            for subset, value in subsets.items():
                if value is not None:
                    out[f"end_model.{where}.{name}.accuracy_{subset}"] = float(value)
        for name, value in (section.get("macro_f1") or {}).items():
            if value is not None:
                out[f"end_model.{where}.{name}.macro_f1"] = float(value)
    return out


def _write_predictions(spark: Any, io: Any, scored: DataFrame, path: str, space: Sequence[str], *, run_id: str,
                       uri: str, version: str, meta: dict[str, Any]) -> dict[str, Any]:
    names = F.array(*[F.lit(s) for s in space])
    out = scored.select(
        "row_id", "probabilities", "label", F.element_at(names, F.col("label") + 1).alias("label_name"), "confidence",
        F.coalesce("lm_label", F.lit(-1)).cast("int").alias("lm_label"),
        F.coalesce("n_votes", F.lit(0)).cast("int").alias("n_votes"),
        F.lit(run_id).alias("run_id"), F.lit(uri).alias("end_model"), F.lit(version).alias("end_model_version"),
        F.lit(meta["classifier"]).alias("classifier"), F.lit(meta["labels_table"]).alias("labels_table"),
        F.lit(meta["labels_version"]).cast("long").alias("labels_version"),
        F.lit(meta["source_table"]).alias("source_table"), F.lit(meta["source_version"]).cast("long").alias("source_version"),
    )  # fmt: skip
    commit = {TRAIN_META_KEY: json.dumps({**meta, "end_model": uri, "end_model_version": version,
                                          "label_space": list(space)}, sort_keys=True, default=str),
              "lakelabel.run_id": run_id}  # fmt: skip
    result = io.write_table(out, path, mode="overwrite", commit_metadata=commit, overwrite_schema=True,
                            description=f"lakelabel train: predictions to {path}")
    return {"version": result.version, "rows": result.num_records}


COMMAND = command.Command(
    logs_to_mlflow=True, writes=("predictions",),
    name="train", help="train a Spark ML end model on the labels, score it on gold, write the predictions table "
                       "(--run-id: the run whose labels to learn from; default the latest labels)",
    new_run_id=False, add_arguments=lambda p: add_task_option(p, every=False),
    precheck=lambda args, cfg: one_task(cfg, args.task, command="train"), reads_source=True, reads_evaluation=True,
    run=lambda args, cfg, run_id, spark: run(spark, cfg, run_id=run_id, task=args.task),
    done=lambda s: (f"lakelabel train: run {s['run_id']}: {s['end_model'].get('model_uri')} -> "
                    f"{s['tables']['predictions']['path']} v{s['tables']['predictions']['version']}"
                    + (" (already trained on these labels with this config: nothing ran)" if s.get("skipped") else "")),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())
