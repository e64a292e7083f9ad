"""The end model scored on gold next to the label model and majority vote, overall and where no LF votes.

Three gold sets, each scored the same way when it exists:

* ``evaluation``: the ``evaluation:`` source (held-out rows). The LFs run on it in memory, as
  ``lakelabel analyze`` does; nothing is written.
* ``gold_test``: the gold table's ``test`` split (rows of the training source that people labeled;
  README "People in the loop"). ``dev`` rows may have been used to fit the label model, so only
  ``test`` rows measure.
* ``source_gold``: the source's own ``gold_column`` (in-sample: the end model trained on these
  rows' weak labels, never on their gold).

Only counts per (vote pattern, gold class, end-model class) reach the driver; the label model and
majority vote are scored from those counts with lakelabel's tie rule
(:func:`labelmodel.tie_shares`: tied top classes share the row), the end model by its argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import aggregate, apply_lfs
from jobs.delta_io.sources import Source, load_source
from jobs.people.gold import current_gold
from jobs.runtime.config import PipelineConfig
from labelmodel import MajorityLabelVoter, tie_shares

__all__ = ["MODELS", "SUBSETS", "score", "evaluation_rows", "gold_test_rows"]

MODELS = ("end_model", "label_model", "majority_vote")
SUBSETS = ("all", "covered", "uncovered")


def score(rows: DataFrame, predicted: DataFrame, *, model: Any, lf_names: Sequence[str],
          label_space: Sequence[str]) -> dict[str, Any]:
    """Accuracy (all / covered / uncovered rows) and per-class precision, recall, F1 of the three labelers.

    Parameters
    ----------
    rows : DataFrame
        ``row_id, pattern, gold`` (:func:`jobs.aggregate.pattern_frame`); rows with gold -1 are left out.
    predicted : DataFrame
        ``row_id, end_label``: the end model's class per row.
    model : labelmodel model or None
        The run's label model; None leaves its numbers out.
    """
    k, m = len(label_space), len(lf_names)
    grouped = (rows.where(F.col("gold") >= 0).join(predicted, "row_id", "left")
               .groupBy("pattern", "gold", F.coalesce("end_label", F.lit(-1)).alias("end_label"))
               .agg(F.count(F.lit(1)).alias("n")).collect())  # fmt: skip
    L = np.full((len(grouped), m), -1, dtype=np.int64)
    for i, r in enumerate(grouped):
        codes = np.asarray(r["pattern"], dtype=np.int64)
        L[i, codes // k] = codes % k
    gold = np.array([r["gold"] for r in grouped], dtype=np.int64)
    end = np.array([r["end_label"] for r in grouped], dtype=np.int64)
    n = np.array([r["n"] for r in grouped], dtype=np.float64)
    shares = {"end_model": np.zeros((len(grouped), k))}
    shares["end_model"][end >= 0, end[end >= 0]] = 1.0
    if model is not None:
        shares["label_model"] = tie_shares(model.predict_proba(L)) if len(L) else np.zeros((0, k))
    mv = MajorityLabelVoter(cardinality=k)
    shares["majority_vote"] = tie_shares(mv.predict_proba(L)) if len(L) else np.zeros((0, k))
    covered = (L >= 0).any(axis=1)
    masks = {"all": np.ones(len(L), dtype=bool), "covered": covered, "uncovered": ~covered}
    out: dict[str, Any] = {"rows": int(n.sum()), "covered_rows": int(n[covered].sum()),
                           "uncovered_rows": int(n[~covered].sum()), "accuracy": {}, "macro_f1": {}}
    credit = {name: sh[np.arange(len(gold)), gold] if len(gold) else np.zeros(0) for name, sh in shares.items()}
    for name in MODELS:
        if name not in shares:
            continue
        out["accuracy"][name] = {s: (float((n * credit[name])[mask].sum() / n[mask].sum()) if n[mask].sum() else None)
                                 for s, mask in masks.items()}
    per_class = []
    for c, cls in enumerate(label_space):
        truth = n * (gold == c)
        entry: dict[str, Any] = {"class": cls, "support": int(truth.sum())}
        for name, sh in shares.items():
            tp = float((truth * sh[:, c]).sum())
            predicted_c = float((n * sh[:, c]).sum())
            p = tp / predicted_c if predicted_c else None
            r = tp / truth.sum() if truth.sum() else None
            f1 = None if p is None or r is None else (2 * p * r / (p + r) if p + r else 0.0)
            entry[name] = {"precision": p, "recall": r, "f1": f1}
        per_class.append(entry)
    out["per_class"] = per_class
    for name in shares:
        f1s = [e[name]["f1"] for e in per_class if e[name]["f1"] is not None]
        out["macro_f1"][name] = float(np.mean(f1s)) if f1s else None
    return out


def evaluation_rows(spark: Any, cfg: PipelineConfig, lf_names: Sequence[str], io: Any,
                    task: Any = None) -> tuple[DataFrame, Source] | str:
    """``(row_id, pattern, gold)`` of the ``evaluation:`` source with the LFs' votes, and the source.

    ``task`` (:class:`jobs.tasks.Task`): one task of a multi-task config: its LFs and gold column.
    Returns a note (str) instead when the LF modules no longer define the run's LFs.
    """
    registry = task.registry if task is not None else apply_lfs.build_registry(cfg)
    if list(registry.names) != list(lf_names):
        return (f"the LF modules now define {list(registry.names)}, not the run's {list(lf_names)}: the evaluation "
                f"source was not scored")
    source = load_source(spark, cfg.evaluation, role="evaluation", io=io)
    apply_lfs.check_lf_source(source, registry)  # a duplicate id would count its row twice
    if task is not None:
        from jobs.tasks import task_source

        source = task_source(source, task)
    votes = apply_lfs.compute_votes(source, registry, batch_size=cfg.apply.batch_size)
    ids = aggregate.source_ids(source, registry.label_space)
    return aggregate.pattern_frame(votes, ids, registry.names, registry.cardinality), source


def gold_test_rows(spark: Any, cfg: PipelineConfig, rows: DataFrame, io: Any) -> DataFrame | None:
    """``rows`` (``row_id, pattern, gold``) restricted to the gold table's ``test`` rows, gold from the table."""
    test = current_gold(spark, cfg, io, split="test")
    if test is None:
        return None
    test = test.select(F.col("row_id").alias("_gold_id"), F.col("label").cast("int").alias("_gold"))
    joined = rows.join(test, F.col("row_id").cast("string") == F.col("_gold_id"))
    return joined.select("row_id", "pattern", F.col("_gold").alias("gold"))
