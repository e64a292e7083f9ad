"""Quality metrics computed on the driver from (pattern, gold class) counts.

Rows with the same vote pattern get the same prediction, so counts per (pattern, gold) are
enough to score any label model and every LF exactly, without row-level data.
"""

from __future__ import annotations

import numpy as np

TIE_TOL = 1e-5


def expected_accuracy(probs: np.ndarray, gold_counts: np.ndarray) -> float:
    """Accuracy in expectation when tied top classes are broken uniformly at random.

    probs: [p, k] predicted probabilities per pattern; gold_counts: [p, k] rows per gold class.
    """
    total = gold_counts.sum()
    if total == 0:
        return float("nan")
    top = probs >= probs.max(axis=1, keepdims=True) - TIE_TOL
    credit = top / top.sum(axis=1, keepdims=True)
    return float((credit * gold_counts).sum() / total)


def lf_accuracies(patterns: np.ndarray, gold_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical accuracy of each LF on the rows it voted on, and how many gold rows that is.

    patterns: [p, m] votes; gold_counts: [p, k]. Returns (accuracy [m] with NaN where the LF
    never voted on a gold row, support [m]).
    """
    p, m = patterns.shape
    voted = patterns >= 0
    support = (gold_counts.sum(axis=1)[:, None] * voted).sum(axis=0)
    safe = np.where(voted, patterns, 0).astype(np.int64)
    correct_per = np.take_along_axis(gold_counts, safe, axis=1) * voted
    correct = correct_per.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(support > 0, correct / np.maximum(support, 1), np.nan)
    return acc.astype(float), support.astype(np.int64)
