"""Error buckets of ``lakelabel analyze``: row counts on Spark, and up to N example rows each.

Buckets: the label model wrong against gold (most confident first), each of the worst LFs wrong
against gold, LFs in conflict, the lowest-confidence labels, rows no LF covers. Each bucket's
size is a Spark count; its examples come from ``ORDER BY ... LIMIT N`` (a top-N per partition,
never a sort of all rows), then one lookup of those ids in the source and the labels table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.analysis.inputs import AnalysisInputs

MAX_TEXT = 300  # characters of a text column shown per example
MAX_COLUMNS = 6  # source columns shown per example
LOW_CONFIDENCE = 0.5  # the "Lowest confidence" bucket counts covered rows below this


def _count(cond: Column) -> Column:
    return F.coalesce(F.sum(F.when(cond, 1).otherwise(0)), F.lit(0)).cast("long")


def bucket_definitions(
    inputs: AnalysisInputs, lf_rows: Sequence[dict[str, Any]], lf_buckets: int
) -> list[dict[str, Any]]:
    """``name, title, what, condition, order`` of every bucket (the worst ``lf_buckets`` LFs get one each)."""
    k = len(inputs.label_space)
    has_gold = inputs.has_gold
    gold, label = F.col("gold"), F.col("label")
    by_conf = [F.desc("confidence"), F.asc("row_id")]
    out = []
    if has_gold:
        out.append({"name": "lm_wrong", "title": "Label model wrong against gold",
                    "what": "rows with gold where the label model's hard label is another class (most confident first)",
                    "condition": (gold >= 0) & (label >= 0) & (label != gold), "order": by_conf})
        scored = [r for r in lf_rows if r["gold_accuracy"] is not None]
        for r in sorted(scored, key=lambda r: (r["gold_accuracy"], r["name"]))[: max(lf_buckets, 0)]:
            j = list(inputs.lf_names).index(r["name"])
            wrong = F.exists("pattern", lambda c: (F.floor(c / k) == j) & (c % k != F.col("gold")))
            out.append({"name": f"lf_wrong:{r['name']}", "title": f"LF {r['name']} wrong against gold",
                        "what": f"rows with gold where {r['name']} voted another class "
                                f"(gold accuracy {r['gold_accuracy']:.1%}; most confident labels first)",
                        "condition": (gold >= 0) & wrong, "order": by_conf})
    out.append({"name": "conflict", "title": "LFs in conflict",
                "what": "rows where LFs voted different classes (most classes, then most votes first)",
                "condition": F.col("n_classes") >= 2,
                "order": [F.desc("n_classes"), F.desc("n_votes"), F.asc("row_id")]})
    out.append({"name": "low_confidence", "title": "Lowest confidence",
                "what": "covered rows with the lowest label-model confidence",
                "counted": f"confidence below {LOW_CONFIDENCE}",
                "condition": (F.col("n_votes") > 0) & (F.col("confidence") < LOW_CONFIDENCE),
                "order": [F.asc("confidence"), F.asc("row_id")], "examples_from": F.col("n_votes") > 0})
    out.append({"name": "uncovered", "title": "Uncovered", "what": "rows on which every LF abstained",
                "condition": F.col("n_votes") == 0, "order": [F.asc("row_id")]})
    return out


def error_buckets(
    scored: DataFrame, inputs: AnalysisInputs, lf_rows: Sequence[dict[str, Any]], *, examples: int, lf_buckets: int,
    io: Any,
) -> list[dict[str, Any]]:
    """Every bucket's count and up to ``examples`` example rows (see the module docstring)."""
    defs = bucket_definitions(inputs, lf_rows, lf_buckets)
    counts = scored.agg(*[_count(d["condition"]).alias(f"b{i}") for i, d in enumerate(defs)]).first()
    picked: list[list[Any]] = []
    for d in defs:
        where = d.get("examples_from", d["condition"])
        rows = (scored.where(where).orderBy(*d["order"]).limit(max(examples, 0))
                .select("row_id", "gold", "label", "mv_label", "confidence", "pattern").collect()) if examples else []
        picked.append(rows)
    ids = sorted({r["row_id"] for rows in picked for r in rows}, key=str)
    text, probs = _lookup(scored.sparkSession, inputs, ids, io)
    space, k, names = list(inputs.label_space), len(inputs.label_space), list(inputs.lf_names)

    def cls(i: int | None) -> str | None:
        return space[i] if i is not None and 0 <= i < k else None

    out = []
    for i, d in enumerate(defs):
        shown = []
        for r in picked[i]:
            votes = [f"{names[c // k]}={space[c % k]}" for c in (r["pattern"] or [])]
            p = probs.get(r["row_id"])
            shown.append({
                "id": r["row_id"], "gold": cls(r["gold"]), "label": cls(r["label"]), "mv_label": cls(r["mv_label"]),
                "confidence": float(r["confidence"]), "votes": votes,
                "probabilities": {space[c]: round(float(p[c]), 4) for c in range(k)} if p else None,
                "columns": text.get(r["row_id"], {}),
            })
        bucket = {"name": d["name"], "title": d["title"], "what": d["what"], "rows": int(counts[f"b{i}"]),
                  "examples": shown}
        if "counted" in d:  # the examples are not only the counted rows: header and table say which is which
            below = sum(e["confidence"] < LOW_CONFIDENCE for e in shown)
            bucket["counted"] = d["counted"]
            bucket["examples_note"] = (f"the {len(shown)} covered row(s) of lowest confidence, {below} of them with "
                                       f"{d['counted']}") if shown else ""
        out.append(bucket)
    return out


def _lookup(spark: Any, inputs: AnalysisInputs, ids: list[Any], io: Any) -> tuple[dict[Any, dict], dict[Any, list]]:
    """Source columns and label probabilities of the example ``ids`` (a bounded list)."""
    if not ids:
        return {}, {}
    source = inputs.source
    skip = {source.id_column, source.gold_column}
    columns = [c for c in source.df.columns if c not in skip][:MAX_COLUMNS]
    id_col = F.col(source.id_column)
    text = {}
    for r in source.df.where(id_col.isin(ids)).select(id_col.alias("__id"), *columns).collect():
        text[r["__id"]] = {c: _short(r[c]) for c in columns}
    labels = inputs.labels(spark, io)
    probs = {r["row_id"]: r["probabilities"] for r in labels.where(F.col("row_id").isin(ids))
             .select("row_id", "probabilities").collect()}
    return text, probs


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[: MAX_TEXT - 1] + "…"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
