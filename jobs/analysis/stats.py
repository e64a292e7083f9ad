"""The statistics of ``lakelabel analyze``, aggregated on Spark from :func:`jobs.analysis.rows.scored_rows`.

Two small tables reach the driver: rows counted per (slice, gold class, covered) with the label
model's and majority vote's tie shares summed per class, and rows counted per distinct
(vote pattern, gold, hard label). Every LF, pair, class and slice statistic is computed from them.
Past ``aggregate.max_patterns`` rows the second stays on Spark and the LF statistics are aggregated there (the
same numbers), as ``lakelabel aggregate`` keeps only the overlap moments past that many patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.aggregate import _moments_on_spark, collect_at_most, one_partition_per_core, pattern_lines
from jobs.analysis.rows import by_column
from labelmodel.stats import stats_from_matrix
from lf_library.analysis import lf_summary, wilson_interval


def _count(cond: Any) -> Any:
    return F.coalesce(F.sum(F.when(cond, 1).otherwise(0)), F.lit(0)).cast("long")


def _f(x: Any) -> float | None:
    """JSON-safe float: None for NaN."""
    x = float(x)
    return None if x != x else x


def _rate(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def group_counts(scored: DataFrame, k: int, n_slices: int) -> pd.DataFrame:
    """Rows per (slice, gold, covered): ``slice`` -1 is every row, ``j`` the rows of slice ``j``."""
    ids = [F.lit(-1)] + [F.when(F.shiftright("slices", j).bitwiseAND(1) == 1, F.lit(j)) for j in range(n_slices)]
    member = F.filter(F.array(*ids), lambda x: x.isNotNull())
    exploded = scored.select("*", F.explode(member).alias("slice"))
    aggs = [F.count(F.lit(1)).alias("n"), _count(F.col("n_votes") >= 2).alias("overlapped"),
            _count(F.col("n_classes") >= 2).alias("conflicted")]
    for c in range(k):
        aggs.append(F.sum(F.col("lm")[c]).alias(f"lm_{c}"))
        aggs.append(F.sum(F.col("mv")[c]).alias(f"mv_{c}"))
    for c in range(-1, k):
        aggs.append(_count(F.col("label") == c).alias(f"label_{c}"))
        aggs.append(_count(F.col("mv_label") == c).alias(f"mvlabel_{c}"))
    grouped = exploded.groupBy("slice", "gold", (F.col("n_votes") > 0).alias("covered")).agg(*aggs)
    return grouped.toPandas()


def _accuracy(g: pd.DataFrame, k: int, prefix: str) -> float | None:
    gold = g[g["gold"] >= 0]
    if gold["n"].sum() == 0:
        return None
    right = sum(gold.loc[gold["gold"] == c, f"{prefix}_{c}"].sum() for c in range(k))
    return float(right / gold["n"].sum())


def summarize_groups(g: pd.DataFrame, label_space: Sequence[str], slice_names: Sequence[str]) -> dict[str, Any]:
    """Totals, confusion matrices, class distributions and per-slice rows from :func:`group_counts`."""
    k = len(label_space)
    names = list(label_space)
    all_rows = g[g["slice"] == -1]
    n = int(all_rows["n"].sum())
    covered = all_rows[all_rows["covered"]]
    gold = all_rows[all_rows["gold"] >= 0]

    def confusion(prefix: str) -> list[list[float]]:
        return [[float(gold.loc[gold["gold"] == t, f"{prefix}_{p}"].sum()) for p in range(k)] for t in range(k)]

    def hard(frame: pd.DataFrame, prefix: str) -> dict[str, int]:
        out = {"(abstain)": int(frame[f"{prefix}_-1"].sum())}
        out.update({names[c]: int(frame[f"{prefix}_{c}"].sum()) for c in range(k)})
        return out

    totals = {
        "rows": n,
        "covered": int(covered["n"].sum()),
        "overlapped": int(all_rows["overlapped"].sum()),
        "conflicted": int(all_rows["conflicted"].sum()),
        "gold_rows": int(gold["n"].sum()),
        "lm_accuracy": _accuracy(all_rows, k, "lm"),
        "mv_accuracy": _accuracy(all_rows, k, "mv"),
        "lm_accuracy_covered": _accuracy(covered, k, "lm"),
        "mv_accuracy_covered": _accuracy(covered, k, "mv"),
    }
    totals["coverage"] = _rate(totals["covered"], n)
    totals["conflict_rate"] = _rate(totals["conflicted"], n)
    classes = {
        "lm_hard": hard(all_rows, "label"),
        "mv_hard": hard(all_rows, "mvlabel"),
        "lm_expected": {names[c]: float(all_rows[f"lm_{c}"].sum()) for c in range(k)},
        "gold": {names[c]: int(gold.loc[gold["gold"] == c, "n"].sum()) for c in range(k)} if len(gold) else {},
    }
    slices = []
    for j, name in enumerate(slice_names):
        s = g[g["slice"] == j]
        size = int(s["n"].sum())
        s_cov = int(s.loc[s["covered"], "n"].sum())
        slices.append({
            "name": name,
            "size": size,
            "share": _rate(size, n),
            "coverage": _rate(s_cov, size),
            "uncovered": size - s_cov,
            "conflict_rate": _rate(int(s["conflicted"].sum()), size),
            "gold_rows": int(s.loc[s["gold"] >= 0, "n"].sum()),
            "lm_accuracy": _accuracy(s, k, "lm"),
            "mv_accuracy": _accuracy(s, k, "mv"),
            "labels": hard(s, "label"),
        })
    return {"totals": totals, "classes": classes, "slices": slices,
            "confusion": {"labels": names, "lm": confusion("lm"), "mv": confusion("mv")}}


def pattern_counts(scored: DataFrame) -> DataFrame:
    """Rows per distinct (vote pattern, gold class, hard label): small, the input of the LF statistics.

    Cached by the caller and read by several queries: one partition per core, not the shuffle's 200.
    """
    return one_partition_per_core(scored.groupBy("pattern", "gold", "label").agg(F.count(F.lit(1)).alias("n")))


def lf_gold_counts(patterns: DataFrame, k: int) -> pd.DataFrame:
    """Per (LF index, class voted): votes on gold rows, correct ones, votes where the LM labeled, agreements."""
    codes = patterns.select("gold", "label", "n", F.explode("pattern").alias("code"))
    v = F.col("code") % k
    return (
        codes.groupBy((F.col("code") / k).cast("int").alias("lf"), v.alias("v"))
        .agg(
            F.sum(F.when(F.col("gold") >= 0, F.col("n")).otherwise(0)).alias("gold_voted"),
            F.sum(F.when(F.col("gold") == v, F.col("n")).otherwise(0)).alias("correct"),
            F.sum(F.when(F.col("label") >= 0, F.col("n")).otherwise(0)).alias("lm_labeled"),
            F.sum(F.when(F.col("label") == v, F.col("n")).otherwise(0)).alias("lm_agree"),
        )
        .toPandas()
    )


def class_coverage(patterns: DataFrame, k: int) -> dict[int, int]:
    """Rows with at least one vote for each class."""
    classes = F.array_distinct(F.transform("pattern", lambda c: c % k))
    rows = patterns.select("n", F.explode(classes).alias("c")).groupBy("c").agg(F.sum("n").alias("n")).collect()
    return {int(r["c"]): int(r["n"]) for r in rows}


GOLD_COUNTS = ("gold_voted", "correct", "lm_labeled", "lm_agree")


def _lf_gold_counts_local(lines: np.ndarray, gold: np.ndarray, label: np.ndarray, n: np.ndarray) -> pd.DataFrame:
    """:func:`lf_gold_counts` summed per LF, from collected patterns (``lines [r, m]``, ``gold, label, n [r]``).

    Indexed by the LFs that voted at least once, as the Spark aggregate is. One LF at a time: memory
    stays O(rows) beyond ``lines`` (up to ``aggregate.max_patterns`` rows).
    """
    has_gold, has_label = gold >= 0, label >= 0
    rows = {}
    for j in range(lines.shape[1]):
        v = lines[:, j]
        voted = v >= 0
        if voted.any():
            rows[j] = (n[voted & has_gold].sum(), n[voted & (v == gold)].sum(), n[voted & has_label].sum(),
                       n[voted & (v == label)].sum())  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(GOLD_COUNTS), dtype="int64")


def _class_coverage_local(lines: np.ndarray, n: np.ndarray, k: int) -> dict[int, int]:
    """:func:`class_coverage` from collected patterns."""
    return {c: int(n[hit].sum()) for c in range(k) if (hit := (lines == c).any(axis=1)).any()}


def lf_weights(model: Any) -> np.ndarray | None:
    """Each LF's weight in the fitted label model: the log-odds its vote adds to the class it votes.

    ``bump`` models: the fitted weight of the vote, averaged over the classes the LF votes (by how
    often it votes them). ``table`` models: the same log-odds read off the conditional table (how
    much a vote for ``v`` raises class ``v``'s score over the mean of the other classes, compared
    with abstaining). Majority vote: 1 for every LF. None when the model has no fitted parameters.
    """
    p = getattr(model, "params_", None)
    if p is None:
        return None
    rate = np.asarray(p.vote_rate, dtype=float)
    m, k = rate.shape
    if p.kind == "bump":
        w = np.asarray(p.weights, dtype=float)
    elif p.kind == "table":
        lt = np.asarray(p.log_table, dtype=float)
        gain = lt[:, 1:, :] - lt[:, :1, :]  # [m, v, y]: vote v instead of abstaining
        own = gain[:, np.arange(k), np.arange(k)]
        others = (gain.sum(axis=2) - own) / max(k - 1, 1)
        w = own - others
    else:
        w = np.ones((m, k))
    tot = rate.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (rate * np.nan_to_num(w)).sum(axis=1) / np.where(tot > 0, tot, 1), np.nan)


def lf_statistics(
    patterns: DataFrame,
    lf_names: Sequence[str],
    label_space: Sequence[str],
    *,
    versions: dict[str, str],
    kinds: dict[str, str],
    errors: dict[str, int],
    model: Any = None,
    top_pairs: int = 10,
    max_patterns: int = 200_000,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[int, int]]:
    """Per-LF rows, LF pairs (most conflicting, most redundant, the conflict matrix) and per-class coverage.

    ``patterns`` (:func:`pattern_counts`) comes to the driver in one job when it has at most
    ``max_patterns`` rows (what reaches the driver is bounded, as in aggregate); a longer one is aggregated on Spark.
    """
    k, m = len(label_space), len(lf_names)
    head = collect_at_most(patterns, max(max_patterns, 0))
    if head is not None:
        lines, columns = pattern_lines(head, m, k, ("gold", "label", "n"))
        stats = stats_from_matrix(lines, k, lf_names=tuple(lf_names), weights=columns["n"])
        per_lf = _lf_gold_counts_local(lines, columns["gold"], columns["label"], columns["n"])
        class_cov = _class_coverage_local(lines, columns["n"], k)
    else:
        stats, _ = _moments_on_spark(patterns, lf_names, k)
        per_lf = lf_gold_counts(patterns, k).groupby("lf")[list(GOLD_COUNTS)].sum()
        class_cov = class_coverage(patterns, k)
    summary = lf_summary(stats, lf_versions=versions, errors=errors)
    votes = stats.class_vote_counts()
    est = weights = None
    if model is not None:
        if list(getattr(model, "lf_names", None) or lf_names) == list(lf_names):
            est = np.asarray(model.estimated_accuracies(), dtype=float)
            weights = lf_weights(model)
    rows = []
    for j, name in enumerate(lf_names):
        s = summary.iloc[j]
        g = per_lf.loc[j] if j in per_lf.index else None
        n_gold = int(g["gold_voted"]) if g is not None else 0
        correct = int(g["correct"]) if g is not None else 0
        low, high = wilson_interval(correct, n_gold)
        rows.append({
            "name": name,
            "version": versions.get(name, ""),
            "kind": kinds.get(name, ""),
            "polarity": [label_space[c] for c in s["polarity"]],
            "votes": int(stats.lf_coverage[j]),
            "coverage": _f(s["coverage"]),
            "overlaps": _f(s["overlaps"]),
            "conflicts": _f(s["conflicts"]),
            "votes_per_class": {label_space[c]: int(votes[j, c]) for c in range(k)},
            "errors": int(s["errors"]),
            "gold_votes": n_gold,
            "gold_correct": correct,
            "gold_accuracy": _rate(correct, n_gold),
            "gold_accuracy_ci95": [_f(low), _f(high)],
            "estimated_accuracy": _f(est[j]) if est is not None else None,
            "weight": _f(weights[j]) if weights is not None else None,
            "lm_agreement": _rate(int(g["lm_agree"]), int(g["lm_labeled"])) if g is not None else None,
        })
    return rows, pair_statistics(stats, top_pairs), class_cov


def pair_statistics(stats: Any, top: int) -> dict[str, Any]:
    """Overlap, agreement and conflict of every LF pair on the rows both voted (from the overlap moments)."""
    m, k = stats.n_lfs, stats.cardinality
    O = stats.overlap_dense().reshape(m, k, m, k)
    overlap = O.sum(axis=(1, 3))
    agree = np.einsum("aubu->ab", O)
    conflict = overlap - agree
    names = list(stats.lf_names)
    pairs = []
    for a in range(m):
        for b in range(a + 1, m):
            if overlap[a, b]:
                pairs.append({"a": names[a], "b": names[b], "overlap": int(overlap[a, b]), "agree": int(agree[a, b]),
                              "conflict": int(conflict[a, b]), "agreement_rate": float(agree[a, b] / overlap[a, b]),
                              "conflict_rate": float(conflict[a, b] / overlap[a, b])})
    conflicting = sorted(pairs, key=lambda p: (-p["conflict"], p["a"], p["b"]))[:top]
    # Redundant: they nearly always agree where they overlap, and overlap a lot.
    redundant = sorted((p for p in pairs if p["agree"] > 0), key=lambda p: (-p["agreement_rate"] * p["agree"],
                                                                            p["a"], p["b"]))[:top]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(overlap > 0, conflict / np.where(overlap > 0, overlap, 1), np.nan)
    np.fill_diagonal(rate, np.nan)
    return {
        "most_conflicting": conflicting,
        "most_redundant": redundant,
        "lfs": names,
        "overlap_matrix": overlap.astype(int).tolist(),
        "conflict_matrix": conflict.astype(int).tolist(),
        "conflict_rate_matrix": [[_f(x) for x in row] for row in rate],
    }


def coverage_gaps(scored: DataFrame, columns: Sequence[str], top: int = 20) -> dict[str, Any]:
    """Uncovered rows per value of each ``analysis.coverage_by`` column (the ``top`` values with most uncovered rows)."""
    out: dict[str, Any] = {}
    for i, col in enumerate(columns):
        grouped = scored.groupBy(F.col(by_column(i)).cast("string").alias("value")).agg(
            F.count(F.lit(1)).alias("rows"), _count(F.col("n_votes") == 0).alias("uncovered"))
        rows = grouped.orderBy(F.desc("uncovered"), F.asc("value")).limit(top).collect()
        out[col] = [{"value": r["value"], "rows": int(r["rows"]), "uncovered": int(r["uncovered"]),
                     "uncovered_rate": _rate(r["uncovered"], r["rows"])} for r in rows]
    return out


def confidence_histogram(scored: DataFrame, bins: int = 10) -> list[dict[str, Any]]:
    """Rows per confidence bucket over [0, 1], with how many have gold and how many the LM got right."""
    bucket = F.least(F.floor(F.col("confidence") * bins).cast("int"), F.lit(bins - 1))
    got = {r["b"]: r for r in scored.groupBy(bucket.alias("b")).agg(
        F.count(F.lit(1)).alias("rows"), _count(F.col("gold") >= 0).alias("gold"),
        _count((F.col("gold") >= 0) & (F.col("label") == F.col("gold"))).alias("correct"),
        _count(F.col("n_votes") == 0).alias("uncovered")).collect()}
    out = []
    for i in range(bins):
        r = got.get(i)
        out.append({"low": i / bins, "high": (i + 1) / bins, "rows": int(r["rows"]) if r else 0,
                    "gold": int(r["gold"]) if r else 0, "correct": int(r["correct"]) if r else 0,
                    "uncovered": int(r["uncovered"]) if r else 0})
    return out
