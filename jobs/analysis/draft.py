"""A draft LF's effect on the analysis, on a sample (the ``develop_lf`` notebook).

The library and the draft run on a sample of the source through the apply job's code; the
sample's votes go through the same statistics as ``lakelabel analyze`` (per LF, LF pairs), so the
notebook draws the report's plots with the draft in them. On top: coverage gained (sample rows
only the draft votes on), conflicts added (rows that conflict only because of the draft), and the
draft's accuracy on rows with dev labels (the source's gold column).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
from pyspark.sql import functions as F

from jobs import delta_io
from jobs.runtime.config import PipelineConfig
from jobs.delta_io.sources import gold_ids, load_source
from jobs.aggregate import pattern_frame
from jobs.analysis import plots
from jobs.analysis import stats
from jobs.apply_lfs import compute_votes
from jobs.notebook.develop import _library_with, draw_sample
from lf_library import LabelingFunction


def _count(cond: Any) -> Any:
    return F.coalesce(F.sum(F.when(cond, 1).otherwise(0)), F.lit(0)).cast("long")


def draft_effect(
    spark: Any, cfg: PipelineConfig, draft: LabelingFunction, *, sample_rows: int = 10_000, seed: int = 0,
) -> dict[str, Any]:
    """What adding ``draft`` to the library changes on a sample of ``sample_rows`` source rows.

    Returns
    -------
    dict
        ``draft``, ``sample_rows``, ``covered_before`` / ``covered_after`` (rows with a vote without /
        with the draft), ``coverage_gained``, ``conflicted_before`` / ``conflicted_after``,
        ``conflicts_added``, ``dev_rows`` / ``dev_voted`` / ``dev_correct`` / ``dev_accuracy`` (the
        draft on rows with gold), and ``lfs``, ``pairs``, ``label_space`` in the analysis document's
        shape (for :mod:`jobs.analysis.plots`).
    """
    registry, _ = _library_with(cfg, draft)
    space, k, names = registry.label_space, registry.cardinality, list(registry.names)
    j = names.index(draft.name)
    source = load_source(spark, cfg.source, io=delta_io.delta_io(spark, cfg.tables.delta_io))
    sample = draw_sample(spark, cfg, sample_rows, seed=seed, source=source).persist()
    votes = rows = None
    try:
        votes = compute_votes(replace(source, df=sample), registry, batch_size=cfg.apply.batch_size).persist()
        gold = gold_ids(replace(source, df=sample), space) if source.gold_column else F.lit(-1).cast("int")
        ids = sample.select(F.col(source.id_column).alias("row_id"), gold.alias("gold"))
        rows = pattern_frame(votes, ids, names, k).withColumn("label", F.lit(-1)).persist()
        lib = F.filter("pattern", lambda c: F.floor(c / k) != j)
        mine = F.filter("pattern", lambda c: F.floor(c / k) == j)
        classes = lambda codes: F.size(F.array_distinct(F.transform(codes, lambda c: c % k)))  # noqa: E731
        vote = F.get(mine, 0) % k  # null (not an error, under ANSI) when the draft did not vote
        t = rows.agg(
            F.count(F.lit(1)).alias("n"),
            _count(F.size(lib) > 0).alias("covered_before"), _count(F.size("pattern") > 0).alias("covered_after"),
            _count(classes(lib) >= 2).alias("conflicted_before"),
            _count(classes(F.col("pattern")) >= 2).alias("conflicted_after"),
            _count(F.col("gold") >= 0).alias("dev_rows"),
            _count((F.col("gold") >= 0) & (F.size(mine) > 0)).alias("dev_voted"),
            _count((F.col("gold") >= 0) & (F.size(mine) > 0) & (vote == F.col("gold"))).alias("dev_correct"),
        ).first()
        patterns = rows.groupBy("pattern", "gold", "label").agg(F.count(F.lit(1)).alias("n"))
        errors = {r["lf_name"]: int(r["n"]) for r in votes.where(F.col("error").isNotNull())
                  .groupBy("lf_name").agg(F.count(F.lit(1)).alias("n")).collect()}
        lf_rows, pairs, _ = stats.lf_statistics(
            patterns, names, space, versions=registry.versions, kinds={lf.name: lf.kind for lf in registry.lfs},
            errors=errors, max_patterns=cfg.aggregate.max_patterns)
    finally:
        for frame in (rows, votes, sample):
            if frame is not None:
                frame.unpersist()
    return {
        "draft": draft.name, "label_space": list(space), "sample_rows": int(t["n"]),
        "covered_before": int(t["covered_before"]), "covered_after": int(t["covered_after"]),
        "coverage_gained": int(t["covered_after"] - t["covered_before"]),
        "conflicted_before": int(t["conflicted_before"]), "conflicted_after": int(t["conflicted_after"]),
        "conflicts_added": int(t["conflicted_after"] - t["conflicted_before"]),
        "dev_rows": int(t["dev_rows"]), "dev_voted": int(t["dev_voted"]), "dev_correct": int(t["dev_correct"]),
        "dev_accuracy": t["dev_correct"] / t["dev_voted"] if t["dev_voted"] else None,
        "lfs": lf_rows, "pairs": pairs, "highlight": draft.name,
    }  # fmt: skip


def effect_table(effect: dict[str, Any]) -> pd.DataFrame:
    """The headline numbers of :func:`draft_effect` as a ``metric, value`` table."""
    n = max(effect["sample_rows"], 1)
    acc = "-" if effect["dev_accuracy"] is None else f"{effect['dev_accuracy']:.1%}"
    rows = [
        ("sample rows", f"{effect['sample_rows']:,}"),
        ("coverage without / with the draft", f"{effect['covered_before'] / n:.1%} / {effect['covered_after'] / n:.1%}"),
        ("coverage gained", f"{effect['coverage_gained']:,} rows ({effect['coverage_gained'] / n:.1%})"),
        ("rows in conflict without / with the draft", f"{effect['conflicted_before']:,} / {effect['conflicted_after']:,}"),
        ("conflicts added", f"{effect['conflicts_added']:,} rows ({effect['conflicts_added'] / n:.1%})"),
        ("accuracy on dev labels", f"{acc} on {effect['dev_voted']:,} voted of {effect['dev_rows']:,} labeled rows"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def effect_figures(effect: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's LF scatter and conflict heatmap for the sample, the draft included (PNG bytes)."""
    return plots.render([plots.lf_coverage_accuracy, plots.conflict_heatmap], effect)
