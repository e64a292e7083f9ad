"""Diff job: which labels changed between two runs, and which LF changes flipped them (``lakelabel diff``).

Reads the labels table at the versions two runs wrote (Delta time travel, on either Delta path)
and the votes table at the versions those labels came from. A row is in the ``label_changes``
table when its hard label changed (``flipped``), its largest per-class probability move passed
``--threshold`` (``moved``), or it exists in one run only (``added``, ``removed``). Each row
lists the LFs whose vote on it changed (name, old and new version, old and new vote). The summary
counts rows per class transition (the full matrix, unchanged rows on its diagonal) and, per LF,
the labels it flipped: a row's flip is attributed to every LF whose vote on that row changed.

Everything is joined and counted on Spark; only the counts reach the driver. The summary is
saved as ``diff.json`` in the later run's folder (the report draws its transition matrix) and
logged to that run's MLflow run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import delta_io
from jobs.analyze import log_to_run
from jobs.changes.runs import RunRecord, find_run, label_runs
from jobs.runtime import command
from jobs.runtime.config import PipelineConfig
from jobs.runtime.progress import Progress
from jobs.runtime.runs import write_json
from jobs.runtime.session import clear_description, describe
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

DIFF_FILE = "diff.json"
DIFF_META_KEY = "lakelabel.diff"
DEFAULT_THRESHOLD = 0.1
ABSENT, UNLABELED = "(absent)", "(unlabeled)"


def resolve_runs(cfg: PipelineConfig, from_run: str | None, to_run: str | None) -> tuple[RunRecord, RunRecord]:
    """The two runs to compare: ``to`` defaults to the latest run that wrote labels, ``from`` to the one before it.

    Raises
    ------
    ConfigError
        An unknown run, fewer than two runs, ``from`` not older than ``to``, different label spaces.
    """
    runs = label_runs(cfg)
    to = find_run(cfg, to_run, runs) if to_run else (runs[-1] if runs else None)
    if to is None:
        raise ConfigError(f"no run wrote the labels table {cfg.table_path('labels')} yet; run the pipeline twice "
                          f"(`lakelabel run --config ...`), then diff")
    if from_run:
        before = find_run(cfg, from_run, runs)
    else:
        older = [r for r in runs if r.labels_version < to.labels_version]
        if not older:
            raise ConfigError(f"run {to.run_id!r} is the first run that wrote {cfg.table_path('labels')}: nothing to "
                              f"compare it with; run the pipeline again, or pass --from and --to")
        before = older[-1]
    if before.run_id == to.run_id:
        raise ConfigError(f"--from and --to are both run {to.run_id!r}: a diff needs two runs; pass an earlier run "
                          f"as --from, or leave --from out to compare with the run before it")
    if before.labels_version >= to.labels_version:
        raise ConfigError(f"--from run {before.run_id!r} (labels v{before.labels_version}) is not older than --to run "
                          f"{to.run_id!r} (labels v{to.labels_version}); swap them")
    if before.label_space and to.label_space and before.label_space != to.label_space:
        raise ConfigError(f"runs {before.run_id!r} and {to.run_id!r} label different spaces ({list(before.label_space)} "
                          f"vs {list(to.label_space)}): their labels cannot be compared; diff runs of one label space")
    return before, to


def _labels(io: Any, spark: SparkSession, record: RunRecord, side: str) -> DataFrame:
    df = io.read_table(spark, record.labels_path, version=record.labels_version)
    return df.select("row_id", *[F.col(c).alias(f"{c}_{side}") for c in ("label", "label_name", "probabilities")])


def _votes(io: Any, spark: SparkSession, record: RunRecord) -> tuple[DataFrame, dict[str, str]]:
    """The votes the run's labels came from, and LF name -> version (its summary's, else the votes')."""
    df = io.read_table(spark, record.votes_path, version=record.votes_version).select("row_id", "lf_name", "lf_version",
                                                                                      "vote")
    versions = {r["lf_name"]: r["lf_version"] for r in df.select("lf_name", "lf_version").distinct().collect()}
    return df, {**versions, **record.lf_versions}


def _version_of(versions: dict[str, str]) -> Any:
    if not versions:
        return lambda name: F.lit(None).cast("string")
    mapping = F.create_map(*[F.lit(x) for kv in sorted(versions.items()) for x in kv])
    return lambda name: F.try_element_at(mapping, name)


def label_changes(spark: SparkSession, io: Any, before: RunRecord, to: RunRecord, threshold: float) -> tuple:
    """``(changes, transitions frame, LF versions before, after)``: the rows of ``label_changes`` (lazy)."""
    a, b = _labels(io, spark, before, "before"), _labels(io, spark, to, "after")
    joined = a.join(b, "row_id", "full_outer")
    move = F.array_max(F.zip_with("probabilities_before", "probabilities_after", lambda x, y: F.abs(x - y)))
    joined = joined.withColumn("max_probability_move", move).withColumn(
        "change",
        F.when(F.col("label_before").isNull(), "added")
        .when(F.col("label_after").isNull(), "removed")
        .when(~F.col("label_before").eqNullSafe(F.col("label_after")), "flipped")
        .when(F.col("max_probability_move") > threshold, "moved"),
    )
    transitions = joined.select(*[
        F.when(F.col(f"label_{s}").isNull(), ABSENT).otherwise(F.coalesce(F.col(f"label_name_{s}"), F.lit(UNLABELED)))
        .alias(s) for s in ("before", "after")])
    changed = joined.where(F.col("change").isNotNull())
    votes_a, versions_a = _votes(io, spark, before)
    votes_b, versions_b = _votes(io, spark, to)
    ids = changed.select("row_id")
    va = votes_a.join(ids, "row_id", "left_semi").select("row_id", "lf_name", F.col("lf_version").alias("old_version"),
                                                         F.col("vote").cast("int").alias("old_vote"))
    vb = votes_b.join(ids, "row_id", "left_semi").select("row_id", "lf_name", F.col("lf_version").alias("new_version"),
                                                         F.col("vote").cast("int").alias("new_vote"))
    old_v, new_v = _version_of(versions_a), _version_of(versions_b)
    # An LF absent from a run's votes on a row abstained there (the votes table is sparse).
    lfs = (
        va.join(vb, ["row_id", "lf_name"], "full_outer")
        .select("row_id", "lf_name",
                F.coalesce("old_version", old_v(F.col("lf_name"))).alias("old_version"),
                F.coalesce("new_version", new_v(F.col("lf_name"))).alias("new_version"),
                F.coalesce("old_vote", F.lit(-1)).alias("old_vote"), F.coalesce("new_vote", F.lit(-1)).alias("new_vote"))
        .where(F.col("old_vote") != F.col("new_vote"))
        .groupBy("row_id")
        .agg(F.array_sort(F.collect_list(F.struct("lf_name", "old_version", "new_version", "old_vote", "new_vote")))
             .alias("lf_changes"))
    )
    empty = F.array().cast("array<struct<lf_name:string,old_version:string,new_version:string,old_vote:int,"
                           "new_vote:int>>")
    changes = changed.join(lfs, "row_id", "left").select(
        "row_id", "change", "label_before", "label_after", "label_name_before", "label_name_after",
        "probabilities_before", "probabilities_after", "max_probability_move",
        F.coalesce("lf_changes", empty).alias("lf_changes"),
        F.lit(before.run_id).alias("from_run"), F.lit(to.run_id).alias("to_run"),
    )  # fmt: skip
    return changes, transitions, versions_a, versions_b


def diff(spark: SparkSession, cfg: PipelineConfig, *, from_run: str | None = None, to_run: str | None = None,
         threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:  # fmt: skip
    """Write the ``label_changes`` table for two runs and return the summary (see the module docstring)."""
    started = time.perf_counter()
    check_threshold(threshold)
    before, to = resolve_runs(cfg, from_run, to_run)
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    path = cfg.table_path("label_changes")
    describe(spark, "diff", f"labels of run {before.run_id} against run {to.run_id}")
    try:
        with Progress(spark, "diff", 0):  # a line every 30 s: tasks finished of the diff's Spark jobs
            changes, transitions, versions_a, versions_b = label_changes(spark, io, before, to, threshold)
            counts = transitions.groupBy("before", "after").count().collect()
            log.info("diff: compared the labels of %d rows (%.1fs)", sum(r["count"] for r in counts),
                     time.perf_counter() - started)
            meta = {DIFF_META_KEY: json.dumps({"from_run": before.run_id, "to_run": to.run_id, "threshold": threshold,
                                               "from_labels_version": before.labels_version,
                                               "to_labels_version": to.labels_version}, sort_keys=True)}
            written = io.write_table(changes, path, mode="overwrite", overwrite_schema=True, commit_metadata=meta,
                                     description=f"lakelabel diff: label changes to {path}")
            stored = io.read_table(spark, path, version=written.version)
            grouped = stored.groupBy("change").agg(F.count(F.lit(1)).alias("count"), F.sum(
                F.when(F.size("lf_changes") == 0, 1).otherwise(0)).alias("no_vote_change")).collect()
            by_change = {r["change"]: r["count"] for r in grouped}
            # Rows whose label changed with every vote the same: the label model's refit moved them.
            refit = {r["change"]: int(r["no_vote_change"] or 0) for r in grouped}
            per_lf = (stored.select("change", F.explode("lf_changes").alias("c"))
                      .groupBy(F.col("c.lf_name").alias("lf")).agg(
                          F.sum(F.when(F.col("change") == "flipped", 1).otherwise(0)).alias("flipped"),
                          F.sum(F.when(F.col("change") == "moved", 1).otherwise(0)).alias("moved"),
                          F.count(F.lit(1)).alias("rows")).collect())
    finally:
        clear_description(spark)
    lf_rows = {r["lf"]: r for r in per_lf}
    lfs = []
    for name in sorted(set(versions_a) | set(versions_b) | set(lf_rows)):
        old, new = versions_a.get(name), versions_b.get(name)
        status = "added" if old is None else "removed" if new is None else "same" if old == new else "changed"
        r = lf_rows.get(name)
        lfs.append({"lf": name, "version_before": old, "version_after": new, "status": status,
                    "flipped": int(r["flipped"]) if r else 0, "moved": int(r["moved"]) if r else 0,
                    "rows_with_vote_changes": int(r["rows"]) if r else 0})
    space = list(to.label_space or before.label_space or [])
    classes = space + sorted({c for r in counts for c in (r["before"], r["after"])} - set(space))
    matrix = [[0] * len(classes) for _ in classes]
    for r in counts:
        matrix[classes.index(r["before"])][classes.index(r["after"])] += int(r["count"])
    doc = {
        "from_run": before.run_id, "to_run": to.run_id, "threshold": threshold,
        "tables": {"labels": {"path": to.labels_path, "from_version": before.labels_version,
                              "to_version": to.labels_version},
                   "votes": {"path": to.votes_path, "from_version": before.votes_version,
                             "to_version": to.votes_version},
                   "label_changes": {"path": path, "version": written.version}},
        "counts": {"rows": sum(int(r["count"]) for r in counts), "changed": sum(by_change.values()),
                   **{c: int(by_change.get(c, 0)) for c in ("flipped", "moved", "added", "removed")},
                   "flipped_by_the_model": refit.get("flipped", 0), "moved_by_the_model": refit.get("moved", 0)},
        "transitions": {"classes": classes, "matrix": matrix,
                        "changed": [{"before": r["before"], "after": r["after"], "rows": int(r["count"])}
                                    for r in sorted(counts, key=lambda r: -r["count"]) if r["before"] != r["after"]]},
        "lfs": lfs,
        "seconds": round(time.perf_counter() - started, 3),
    }  # fmt: skip
    write_json(to.folder / DIFF_FILE, doc)
    return doc


def run(spark: SparkSession, cfg: PipelineConfig, *, from_run: str | None = None, to_run: str | None = None,
        threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:  # fmt: skip
    """``lakelabel diff``: the diff summary, in the stage summaries' shape, logged to the later run's MLflow run."""
    doc = diff(spark, cfg, from_run=from_run, to_run=to_run, threshold=threshold)
    c = doc["counts"]

    def log_it(mlflow: Any) -> None:
        mlflow.log_dict(doc, f"diff/{DIFF_FILE}")
        mlflow.log_metrics({f"diff.{key}": float(c[key]) for key in ("changed", "flipped", "moved", "added", "removed")})

    mlflow_info = log_to_run(cfg, doc["to_run"], log_it)
    log.info("diff: %s -> %s: %d flipped, %d moved, %d added, %d removed of %d rows", doc["from_run"], doc["to_run"],
             c["flipped"], c["moved"], c["added"], c["removed"], c["rows"])
    return {"run_id": doc["to_run"], "stage": "diff", "status": "succeeded", "skipped": False,
            "tables": {"label_changes": doc["tables"]["label_changes"]}, "counts": c, "diff": doc,
            "mlflow": mlflow_info, "timings_seconds": {"diff": doc["seconds"]}}


def check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold {threshold} must be between 0 and 1 (a move in probability)")


def later_run(to_run: str | None, run_id: str | None) -> str | None:
    """The run to diff up to: ``--to``, else ``--run-id`` (the run a scheduler's task names: what it changed).

    A ``--run-id`` was once accepted and ignored, so ``diff --run-id R`` compared the latest two runs with
    exit 0 whatever R was. Both given and different is a :class:`ConfigError`.
    """
    if to_run and run_id and to_run != run_id:
        raise ConfigError(f"--to {to_run} and --run-id {run_id} name different runs; diff compares --from with --to "
                          f"(--run-id is a default for --to): drop one of them")
    return to_run or run_id


def _precheck(args: Any, cfg: PipelineConfig) -> None:
    """Before Spark starts: the threshold, and the two runs (their folders and summaries are files)."""
    check_threshold(args.threshold)
    resolve_runs(cfg, args.from_run, later_run(args.to_run, args.run_id))


def _options(p: Any) -> None:
    p.add_argument("--from", dest="from_run", metavar="RUN", help="the earlier run (default: the run before --to)")
    p.add_argument("--to", dest="to_run", metavar="RUN",
                   help="the later run (default: --run-id, else the latest run that wrote labels)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"also list rows whose probability of a class moved more than this (default {DEFAULT_THRESHOLD})")


def _done(s: dict[str, Any]) -> str:
    d = s["diff"]
    c = d["counts"]
    flips = ", ".join(f"{lf['lf']} {lf['flipped']}" for lf in d["lfs"] if lf["flipped"]) or "none"
    if c.get("flipped_by_the_model") or c.get("moved_by_the_model"):
        flips += (f"; with no vote changed (the label model's refit): {c.get('flipped_by_the_model', 0)} flipped, "
                  f"{c.get('moved_by_the_model', 0)} moved")
    return (f"lakelabel diff: {d['from_run']} -> {d['to_run']}: {c['flipped']} flipped, {c['moved']} moved, "
            f"{c['added']} added, {c['removed']} removed of {c['rows']} rows; flips per LF: {flips}; "
            f"table {d['tables']['label_changes']['path']}")


COMMAND = command.Command(
    logs_to_mlflow=True, writes=("label_changes",),  # the diff goes to the later run's MLflow run: not through a copied store
    name="diff", help="which labels changed between two runs and which LF changes flipped them", new_run_id=False,
    run_id_help="the later run when --to is not given (--to RUN says the same): diff RUN with the run before it",
    add_arguments=_options, done=_done, precheck=_precheck,
    run=lambda args, cfg, run_id, spark: run(spark, cfg, from_run=args.from_run,
                                             to_run=later_run(args.to_run, args.run_id), threshold=args.threshold),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
