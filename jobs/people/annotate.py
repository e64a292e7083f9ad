"""Annotate job: pick the rows worth a person's time and write them for annotation (on Spark).

Strategies (``--strategy``), each over the rows of the latest labels table that are not in the
gold table yet:

* ``uncertain``: covered rows whose predicted probabilities have the highest entropy;
* ``conflict``: rows whose LFs disagree most (entropy of the LF votes' classes);
* ``uncovered``: rows no LF voted on, sampled for diversity (at most one row per MinHash
  signature of the word set before a second one);
* ``stratified``: an equal number per predicted class (rows without a prediction are a stratum
  too), in random order within each: an unbiased test set;
* ``disagreement``: rows where the label model and majority vote predict different classes,
  the model's margin between the two first. When ``lakelabel train`` wrote a ``predictions``
  table from the current labels, the end model takes majority vote's place: rows some LF voted
  on where the end model and the label model predict different classes, both models' margins
  for their own class first (:func:`jobs.endmodel.feedback.disagreement_score`).

Near-duplicate texts are collapsed first (one row per hash of the lower-cased text with runs of
non-alphanumerics made one space). The output carries the id, the text and the configured
columns, the predicted label and probabilities, and the LFs that voted with their votes.
``--format csv`` adds empty ``label``, ``annotator`` and ``note`` columns for the annotator;
``--format label-studio`` writes Label Studio tasks with the prediction pre-filled, plus the
labeling config beside them (``<out>.xml``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from jobs import delta_io
from jobs.analysis.inputs import labels_of_run
from jobs.task_views import one_task, task_applied, view_labels
from jobs.runtime.config import PipelineConfig
from jobs.delta_io.sources import load_source
from jobs.endmodel.feedback import disagreement_score
from jobs.people import label_studio
from jobs.people.gold import read_gold
from lf_library.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

__all__ = ["STRATEGIES", "check_n", "normalized_text", "select_rows", "run"]

# The characters an Excel (and LibreOffice) cell holds.
SPREADSHEET_CELL_MAX = 32_767

Strategy = Literal["uncertain", "conflict", "uncovered", "stratified", "disagreement"]
STRATEGIES = ("uncertain", "conflict", "uncovered", "stratified", "disagreement")
OutFormat = Literal["csv", "label-studio"]


def normalized_text(col: Column) -> Column:
    """Lower-cased text with every run of non-letters/digits made one space (the near-duplicate key)."""
    return F.trim(F.regexp_replace(F.lower(col), r"[^\p{L}\p{N}]+", " "))


def _entropy(probs: Column) -> Column:
    return F.aggregate(probs, F.lit(0.0).cast("double"),
                       lambda acc, p: acc - F.when(p > 0, p * F.log(p)).otherwise(F.lit(0.0)))  # fmt: skip


def _vote_summary(votes: DataFrame, k: int) -> DataFrame:
    """``row_id, vote_entropy, mv_label`` from the votes table (majority vote; -1 on a tie)."""
    per_class = votes.where(F.col("vote") >= 0).groupBy("row_id", "vote").agg(F.count(F.lit(1)).alias("c"))
    return per_class.groupBy("row_id").agg(
        F.sum("c").alias("_total"),
        F.max("c").alias("_top"),
        F.max_by("vote", "c").alias("_mv"),
        F.collect_list(F.struct("vote", "c")).alias("_counts"),
    ).select(
        "row_id",
        F.aggregate("_counts", F.lit(0.0).cast("double"),
                    lambda acc, s: acc - (s["c"] / F.col("_total")) * F.log(s["c"] / F.col("_total"))).alias("vote_entropy"),
        F.when(F.size(F.filter("_counts", lambda s: s["c"] == F.col("_top"))) == 1, F.col("_mv"))
        .otherwise(F.lit(-1)).cast("int").alias("mv_label"),
    )  # fmt: skip


def _minhash(text: Column, seed: int) -> Column:
    words = F.array_distinct(F.split(normalized_text(text), " "))
    return F.array_min(F.transform(words, lambda w: F.xxhash64(w, F.lit(seed))))


def select_rows(
    labels: DataFrame,
    votes: DataFrame,
    texts: DataFrame,
    *,
    strategy: Strategy,
    n: int,
    cardinality: int,
    seed: int = 0,
    exclude: DataFrame | None = None,
    predictions: DataFrame | None = None,
) -> tuple[DataFrame, dict[str, int]]:
    """The ``n`` rows a strategy picks, best first, with their ``score`` (lazy, nothing collected).

    ``labels``: the labels table; ``votes``: the votes table; ``texts``: ``row_id, text`` of
    every source row; ``exclude``: ``row_id`` (string) of rows not to pick (the gold rows);
    ``predictions``: the end model's predictions table (``disagreement`` then compares it with the
    label model instead of majority vote).
    Also returns the candidate counts (``candidates``, ``after_dedup``).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r} is not valid; choose one of: {', '.join(STRATEGIES)}")
    rows = labels.select(F.col("row_id").cast("string").alias("row_id"), "probabilities", "label", "confidence",
                         "n_votes").join(texts, "row_id")  # fmt: skip
    if exclude is not None:
        rows = rows.join(exclude.select("row_id").distinct(), "row_id", "left_anti")
    rand = F.xxhash64(F.col("row_id"), F.lit(seed))
    summary = _vote_summary(votes.select(F.col("row_id").cast("string").alias("row_id"), "vote"), cardinality)
    rows = rows.join(summary, "row_id", "left").fillna({"vote_entropy": 0.0, "mv_label": -1})
    if strategy == "uncertain":
        rows = rows.where(F.col("n_votes") > 0).withColumn("score", _entropy(F.col("probabilities")))
    elif strategy == "conflict":
        rows = rows.where(F.col("vote_entropy") > 0).withColumn("score", F.col("vote_entropy"))
    elif strategy == "uncovered":
        rows = rows.where(F.col("n_votes") == 0).withColumn("score", F.lit(0.0))
    elif strategy == "stratified":
        rows = rows.withColumn("score", F.lit(0.0))
    elif predictions is not None:  # disagreement with the end model (lakelabel train)
        end = predictions.select(F.col("row_id").cast("string").alias("row_id"),
                                 F.col("probabilities").alias("_end_probs"), F.col("label").alias("_end_label"))
        rows = rows.join(end, "row_id").where((F.col("n_votes") > 0) & (F.col("label") >= 0)
                                              & (F.col("_end_label") != F.col("label")))  # fmt: skip
        rows = rows.withColumn("score", disagreement_score(F.col("_end_probs"), F.col("_end_label"),
                                                           F.col("probabilities"), F.col("label")))  # fmt: skip
    else:  # disagreement: the model's margin for its class over majority vote's
        rows = rows.where((F.col("mv_label") >= 0) & (F.col("label") >= 0) & (F.col("mv_label") != F.col("label")))
        rows = rows.withColumn("score", F.element_at("probabilities", F.col("label") + 1)
                               - F.element_at("probabilities", F.col("mv_label") + 1))  # fmt: skip
    rows = rows.withColumn("_rand", rand).withColumn("_dup", F.sha2(normalized_text(F.col("text")), 256))
    best_copy = Window.partitionBy("_dup").orderBy(F.col("score").desc(), "_rand")
    deduped = rows.withColumn("_c", F.row_number().over(best_copy)).where(F.col("_c") == 1).drop("_c")
    if strategy == "uncovered":
        group = Window.partitionBy("_sig").orderBy("_rand")
        deduped = deduped.withColumn("_sig", _minhash(F.col("text"), seed)).withColumn("_rank", F.row_number().over(group))
        order = [F.col("_rank"), F.col("_rand")]
    elif strategy == "stratified":
        stratum = Window.partitionBy("label").orderBy("_rand")
        deduped = deduped.withColumn("_rank", F.row_number().over(stratum))
        order = [F.col("_rank"), F.col("label"), F.col("_rand")]
    else:
        order = [F.col("score").desc(), F.col("_rand")]
    counts = deduped.agg(F.count(F.lit(1)).alias("after_dedup")).first()
    picked = deduped.orderBy(*order).limit(n)
    return picked, {"after_dedup": int(counts["after_dedup"])}


def text_column_of(cfg: PipelineConfig, source: Any, registry: Any = None) -> str:
    """The column annotators read: ``annotate.text_column``, else the first column the text LFs read.

    ``registry``: the LFs to look at (a task's); default the config's.
    """
    if cfg.annotate.text_column:
        column = cfg.annotate.text_column
    else:
        from jobs.apply_lfs import build_registry, text_columns

        column = next(iter(text_columns(registry if registry is not None else build_registry(cfg))), None)
        if column is None:
            raise ConfigError("no text column to show: set annotate.text_column to the source column annotators read")
    if column not in source.df.columns:
        raise InputDataError(
            f"annotate.text_column {column!r} is not a column of the source {source.description}; its columns: "
            f"{', '.join(source.df.columns)}"
        )
    return column


def _end_model_predictions(cfg: PipelineConfig, io: Any, spark: SparkSession, labels_path: str) -> DataFrame | None:
    """The predictions table when ``lakelabel train`` wrote it from the current labels, else None."""
    path = cfg.table_path("predictions")
    if not io.table_exists(path):
        return None
    meta = io.read_metadata(path).get("lakelabel.train")
    lineage = json.loads(meta) if meta else {}
    if lineage.get("labels_version") != io.table_version(labels_path):
        # A warning (-q shows it): the rows picked are not the ones a user who ran `train` expects (a drill).
        log.warning("annotate: the predictions table %s is from labels v%s, not the current v%s; disagreement "
                    "compares the label model with majority vote instead of the end model: rerun `lakelabel train` "
                    "first to compare with it", path, lineage.get("labels_version"), io.table_version(labels_path))
        return None
    return io.read_table(spark, path)


def check_n(n: int) -> None:
    if n < 1:
        raise ConfigError(f"--n {n} must be at least 1 (the number of rows to pick)")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; left only by a failed write or rename


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    *,
    run_id: str | None = None,
    strategy: Strategy,
    n: int,
    out: str,
    format: OutFormat = "csv",
    task: str | None = None,
) -> dict[str, Any]:
    """``lakelabel annotate``: pick ``n`` rows by ``strategy`` and write them to ``out``; returns the summary.

    ``run_id``: the run whose labels to pick from (default: the run that wrote the latest labels; another
    run's is a :class:`ConfigError`, as for ``analyze``). ``task``: the task of a multi-task config whose
    labels to pick from (required for such a config): its labels, its LFs' votes, its label space; the
    summary then names it.
    """
    started = time.perf_counter()
    check_n(n)
    if format not in ("csv", "label-studio"):
        raise ConfigError(f"--format {format!r} is not valid; choose csv or label-studio")
    from jobs.apply_record import load_apply_result

    view = one_task(cfg, task, command="annotate")
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    applied = load_apply_result(cfg, io)
    labels_path, _, written = labels_of_run(cfg, run_id, io, view, verb="annotate")
    run_id = written.get("run_id") or run_id
    if view is not None:
        applied, cfg = task_applied(applied, view), view.cfg
    space = list(applied.label_space)
    source = load_source(spark, cfg.source, io=io)
    text_col = text_column_of(cfg, source, view.task.registry if view is not None else None)
    extra = [c for c in cfg.annotate.columns if c not in (text_col, source.id_column)]
    missing = [c for c in [text_col, *extra] if c not in source.df.columns]
    if missing:
        raise InputDataError(
            f"annotate column(s) {', '.join(map(repr, missing))} not in the source {source.description}; its "
            f"columns: {', '.join(source.df.columns)}. Fix annotate.text_column / annotate.columns"
        )
    texts = source.df.select(F.col(source.id_column).cast("string").alias("row_id"),
                             F.coalesce(F.col(text_col).cast("string"), F.lit("")).alias("text"),
                             *[F.col(c).cast("string").alias(f"_x_{i}") for i, c in enumerate(extra)])  # fmt: skip
    labels = view_labels(spark, view, io) if view is not None else io.read_table(spark, labels_path)
    votes = io.read_table(spark, applied.votes_table)
    if view is not None:  # the shared votes table: this task's LFs only
        votes = votes.where(F.col("lf_name").isin(list(applied.lf_names)))
    gold = read_gold(spark, cfg, io)
    predictions = _end_model_predictions(cfg, io, spark, labels_path) if strategy == "disagreement" else None
    picked, counts = select_rows(labels, votes, texts, strategy=strategy, n=n, cardinality=len(space),
                                 seed=cfg.annotate.seed, exclude=gold, predictions=predictions)  # fmt: skip
    name_of = F.element_at(F.array(*[F.lit(s) for s in space]), F.col("vote") + 1)
    voted = (
        votes.select(F.col("row_id").cast("string").alias("row_id"), "lf_name", "vote").where(F.col("vote") >= 0)
        .groupBy("row_id").agg(F.array_sort(F.collect_list(F.concat("lf_name", F.lit("="), name_of))).alias("lfs"))
    )  # fmt: skip
    rows = picked.join(voted, "row_id", "left").collect()
    rows = sorted(rows, key=lambda r: (-r["score"], r["_rand"]) if strategy not in ("uncovered", "stratified")
                  else (r["_rank"], r["label"] if strategy == "stratified" else 0, r["_rand"]))  # fmt: skip
    model_version = labels.select("label_model_version").first()
    model_version = f"lakelabel {model_version[0] if model_version else '?'}"
    records = []
    for r in rows:
        predicted = space[r["label"]] if r["label"] is not None and r["label"] >= 0 else None
        rec = {"row_id": r["row_id"], "text": r["text"]}
        rec.update({c: r[f"_x_{i}"] for i, c in enumerate(extra)})
        rec.update({
            "predicted_label": predicted or "",
            "confidence": round(float(r["confidence"]), 4) if r["confidence"] is not None else None,
            **{f"p_{s}": round(float(p), 4) for s, p in zip(space, r["probabilities"] or [])},
            "mv_label": space[r["mv_label"]] if r["mv_label"] >= 0 else "",
            "voting_lfs": "; ".join(r["lfs"] or []),
            "strategy": strategy,
            "score": round(float(r["score"]), 4) if not math.isnan(r["score"]) else None,
        })  # fmt: skip
        records.append(rec)
    path = Path(out).expanduser()
    files = [str(path)]
    if format == "csv":
        import pandas as pd

        frame = pd.DataFrame(records, columns=["row_id", "label", "annotator", "note", "text", *extra,
                                               "predicted_label", "confidence", *[f"p_{s}" for s in space],
                                               "mv_label", "voting_lfs", "strategy", "score"])  # fmt: skip
        frame[["label", "annotator", "note"]] = ""
        _write_atomic(path, frame.to_csv(index=False))
        long = sum(len(rec["text"]) > SPREADSHEET_CELL_MAX for rec in records if isinstance(rec["text"], str))
        if long:  # a drill with long documents: 148 of 200 texts were over, one of 3.87 million characters
            log.warning("annotate: %d of %d texts are longer than %s characters, the most a spreadsheet cell holds: "
                        "Excel and LibreOffice cut or split them, which can shift the rows of a CSV saved back; "
                        "label them with --format label-studio, or in an editor that keeps the CSV as it is",
                        long, len(records), f"{SPREADSHEET_CELL_MAX:,}")
    else:
        tasks = [label_studio.task({**rec, "confidence": "" if rec["confidence"] is None else rec["confidence"]},
                                   rec["predicted_label"] or None, rec["confidence"], model_version)
                 for rec in records]  # fmt: skip
        _write_atomic(path, json.dumps(tasks, indent=1, ensure_ascii=False))
        config = path.with_suffix(".xml")
        _write_atomic(config, label_studio.label_config(space))
        files.append(str(config))
    seconds = time.perf_counter() - started
    log.info("annotate: %d row(s) by %s (of %d candidates after collapsing near-duplicates) -> %s in %.1fs",
             len(records), strategy, counts["after_dedup"], ", ".join(files), seconds)
    per_class: dict[str, int] = {}
    for rec in records:
        per_class[rec["predicted_label"] or "(none)"] = per_class.get(rec["predicted_label"] or "(none)", 0) + 1
    return {
        "run_id": run_id, "stage": "annotate", "status": "succeeded", "skipped": False, "strategy": strategy,
        **({"task": view.name} if view is not None else {}),
        "files": files, "format": format,
        **({"disagreement_with": "end_model" if predictions is not None else "majority_vote"}
           if strategy == "disagreement" else {}),
        "tables": {"labels": {"path": labels_path, "version": io.table_version(labels_path)},
                   "gold": {"path": cfg.table_path("gold"), "version": io.table_version(cfg.table_path("gold"))}},
        "counts": {"rows": len(records), "candidates_after_dedup": counts["after_dedup"], "per_predicted_class": per_class},
        "timings_seconds": {"annotate": round(seconds, 3)},
    }  # fmt: skip
