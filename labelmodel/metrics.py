"""Scores of hard labels against gold labels, under Snorkel 0.10's metric names and rules.

:meth:`labelmodel.LabelModel.score` calls :func:`score_predictions`. The rules are
Snorkel's ``Scorer`` (``snorkel/analysis/scorer.py`` and ``metrics.py``), computed with
numpy instead of scikit-learn:

* ``"coverage"`` is the fraction of *all* rows that got a label (``pred != -1``);
* every other metric is computed on the rows whose gold label is known (``gold != -1``)
  *and* that got a label (``pred != -1``);
* ``precision``, ``recall``, ``f1`` and ``fbeta`` are binary (positive class 1), as
  scikit-learn's default ``average="binary"``; ``f1_micro``/``f1_macro`` average over
  classes; ``matthews_corrcoef`` is the multiclass MCC; ``roc_auc`` is binary and ranks
  rows by ``P(class 1)``.

Snorkel's ``fbeta`` cannot be called without scikit-learn's ``beta`` argument; here it
takes ``beta`` (default 1, which equals ``f1``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["METRICS", "score_predictions"]

METRICS: tuple[str, ...] = (
    "accuracy", "coverage", "precision", "recall", "f1", "f1_micro", "f1_macro", "fbeta",
    "matthews_corrcoef", "roc_auc",
)
_BINARY = ("precision", "recall", "f1", "fbeta", "roc_auc")
UNKNOWN = -1


def check_metrics(metrics: Sequence[str] | str | None, k: int) -> list[str]:
    """Validate metric names (a single name is accepted too); binary metrics need ``k == 2``.

    ``None`` is no metric, as in Snorkel's ``Scorer`` (``score`` then returns ``{}``).
    """
    names = [] if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; use any of {', '.join(METRICS)}")
    binary = [m for m in names if m in _BINARY]
    if binary and k != 2:
        raise ValueError(
            f"metric {binary[0]!r} is binary (positive class 1) but cardinality is {k}; "
            "use f1_macro, f1_micro, accuracy or matthews_corrcoef"
        )
    return names


def score_predictions(
    golds: np.ndarray,
    preds: np.ndarray,
    probs: np.ndarray,
    metrics: Sequence[str],
    *,
    beta: float = 1.0,
) -> dict[str, float]:
    """Score ``preds`` (and ``probs`` for ``roc_auc``) against ``golds``.

    Parameters
    ----------
    golds : ndarray of int, shape [n]
        Gold class ids; ``-1`` marks an unknown gold label (the row is left out of every
        metric but ``coverage``).
    preds : ndarray of int, shape [n]
        Hard labels; ``-1`` where the model left the row unlabeled.
    probs : ndarray, shape [n, k]
    metrics : sequence of str
        Names from :data:`METRICS` (validated by :func:`check_metrics`).
    beta : float
        ``beta`` of ``fbeta``.

    Returns
    -------
    dict
        ``{metric: value}`` in the order asked; NaN when no row is left to score.
    """
    k = probs.shape[1]
    out: dict[str, float] = {}
    keep = (golds != UNKNOWN) & (preds != UNKNOWN)
    g, p, pr = golds[keep], preds[keep], probs[keep]
    for name in metrics:
        if name == "coverage":
            out[name] = float(np.mean(preds != UNKNOWN)) if len(preds) else math.nan
        elif len(g) == 0:
            out[name] = math.nan
        elif name in ("accuracy", "f1_micro"):  # single-label: micro F1 equals accuracy
            out[name] = float(np.mean(p == g))
        elif name in ("precision", "recall", "f1", "fbeta"):
            out[name] = _binary(g, p, name, beta)
        elif name == "f1_macro":
            out[name] = _f1_macro(g, p, k)
        elif name == "matthews_corrcoef":
            out[name] = _mcc(g, p, k)
        elif name == "roc_auc":
            out[name] = _roc_auc(g, pr[:, 1])
    return out


def _binary(g: np.ndarray, p: np.ndarray, name: str, beta: float) -> float:
    tp = float(np.sum((p == 1) & (g == 1)))
    pp, ap = float(np.sum(p == 1)), float(np.sum(g == 1))
    prec = tp / pp if pp else 0.0
    rec = tp / ap if ap else 0.0
    if name == "precision":
        return prec
    if name == "recall":
        return rec
    b2 = 1.0 if name == "f1" else float(beta) ** 2
    denom = b2 * prec + rec
    return (1 + b2) * prec * rec / denom if denom else 0.0


def _f1_macro(g: np.ndarray, p: np.ndarray, k: int) -> float:
    # scikit-learn averages over the classes present in gold or predictions
    f1s = []
    for c in range(k):
        tp = np.sum((p == c) & (g == c))
        pp, ap = np.sum(p == c), np.sum(g == c)
        if pp + ap:
            f1s.append(2 * tp / (pp + ap))
    return float(np.mean(f1s)) if f1s else math.nan


def _mcc(g: np.ndarray, p: np.ndarray, k: int) -> float:
    C = np.bincount(g * k + p, minlength=k * k).reshape(k, k).astype(np.float64)
    t_sum, p_sum = C.sum(axis=1), C.sum(axis=0)
    n, correct = C.sum(), np.trace(C)
    cov_tp = correct * n - t_sum @ p_sum
    cov_pp = n * n - p_sum @ p_sum
    cov_tt = n * n - t_sum @ t_sum
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / math.sqrt(cov_tt * cov_pp))


def _roc_auc(g: np.ndarray, score: np.ndarray) -> float:
    pos = g == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "roc_auc is undefined when the scored rows hold one gold class only; "
            "score on rows of both classes or use another metric"
        )
    from scipy.stats import rankdata  # here: scipy.stats costs every `import labelmodel` (and each Spark worker) 0.3 s

    ranks = rankdata(score)  # ties get their average rank (Mann-Whitney U)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
