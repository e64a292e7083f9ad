"""Where the end model points next: rows where it and the label model disagree, rows it is unsure of.

Both lists come from the scored source rows (end model and label model side by side, on Spark);
only the ``feedback_rows`` rows of each list reach the driver. A disagreement is a row some LF
voted on where the two models' labels differ (the label model's label not -1); rows are ranked by
how much both models prefer their own class: the end model's margin of its class over the label
model's, plus the label model's margin the other way. ``lakelabel annotate --strategy
disagreement`` uses the same score (:func:`disagreement_score`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["LOW_CONFIDENCE", "disagreement_score", "feedback"]

# Rows whose end-model confidence (top probability) is below this count as low-confidence.
LOW_CONFIDENCE = 0.6
_TEXT_CHARS = 300


def disagreement_score(end_probs: Column, end_label: Column, lm_probs: Column, lm_label: Column) -> Column:
    """Both models' margins for their own class over the other's (0..2; higher: a firmer disagreement)."""
    return (F.element_at(end_probs, end_label + 1) - F.element_at(end_probs, lm_label + 1)
            + F.element_at(lm_probs, lm_label + 1) - F.element_at(lm_probs, end_label + 1))  # fmt: skip


def _rows(frame: DataFrame, label_space: Sequence[str]) -> list[dict[str, Any]]:
    def name(c: Any) -> str | None:
        return label_space[c] if c is not None and 0 <= c < len(label_space) else None

    out = []
    for r in frame.collect():
        out.append({
            "row_id": r["row_id"], "text": r["text"], "end_label": name(r["label"]),
            "end_confidence": round(float(r["confidence"]), 4), "lm_label": name(r["lm_label"]),
            "lm_confidence": None if r["lm_confidence"] is None else round(float(r["lm_confidence"]), 4),
            "n_votes": r["n_votes"], "score": None if r["score"] is None else round(float(r["score"]), 4),
        })  # fmt: skip
    return out


def feedback(scored: DataFrame, texts: DataFrame | None, label_space: Sequence[str], n: int) -> dict[str, Any]:
    """Counts and the top ``n`` rows of each list.

    Parameters
    ----------
    scored : DataFrame
        ``row_id, probabilities, label, confidence, lm_probabilities, lm_label, n_votes`` per source row.
    texts : DataFrame, optional
        ``row_id, text`` (the end model's text columns joined), shown beside each row.
    """
    lm_conf = F.array_max("lm_probabilities")
    disagree = (F.col("n_votes") > 0) & (F.col("lm_label") >= 0) & (F.col("label") != F.col("lm_label"))
    counts = scored.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(disagree.cast("long")).alias("disagreements"),
        F.sum(((F.col("n_votes") > 0) & (F.col("lm_label") >= 0)).cast("long")).alias("comparable"),
        F.sum((F.col("confidence") < LOW_CONFIDENCE).cast("long")).alias("low_confidence"),
    ).first()
    base = scored.select("*", lm_conf.alias("lm_confidence"))
    if texts is not None:
        base = base.join(texts.select("row_id", F.substring("text", 1, _TEXT_CHARS).alias("text")), "row_id", "left")
    else:
        base = base.withColumn("text", F.lit(None).cast("string"))
    score = disagreement_score(F.col("probabilities"), F.col("label"), F.col("lm_probabilities"), F.col("lm_label"))
    top = base.where(disagree).withColumn("score", score).orderBy(F.col("score").desc(), F.col("row_id")).limit(n)
    least = base.withColumn("score", F.col("confidence")).orderBy(F.col("confidence"), F.col("row_id")).limit(n)
    comparable = int(counts["comparable"] or 0)
    return {
        "disagreements": int(counts["disagreements"] or 0),
        "disagreement_rate": (int(counts["disagreements"] or 0) / comparable) if comparable else None,
        "low_confidence": int(counts["low_confidence"] or 0),
        "low_confidence_below": LOW_CONFIDENCE,
        "top_disagreements": _rows(top, label_space) if n else [],
        "least_confident": _rows(least, label_space) if n else [],
    }
