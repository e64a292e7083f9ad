"""Driver-side metrics from (pattern, gold) counts equal the row-level computation."""

from __future__ import annotations

import numpy as np

from jobs.runtime.metrics import expected_accuracy, lf_accuracies


def test_pattern_metrics_equal_row_level():
    rng = np.random.default_rng(3)
    n, m, k = 3000, 5, 3
    y = rng.integers(0, k, n)
    L = np.where(rng.random((n, m)) < 0.4, np.where(rng.random((n, m)) < 0.7, y[:, None], rng.integers(0, k, (n, m))), -1)
    patterns, inverse = np.unique(L, axis=0, return_inverse=True)
    gold_counts = np.zeros((len(patterns), k), dtype=np.int64)
    np.add.at(gold_counts, (inverse.ravel(), y), 1)

    # Row level: vote counts as scores, expected accuracy under random tie breaking.
    scores = np.stack([(L == c).sum(axis=1) for c in range(k)], axis=1).astype(float)
    top = scores == scores.max(axis=1, keepdims=True)
    row_acc = np.mean(top[np.arange(n), y] / top.sum(axis=1))
    pat_scores = np.stack([(patterns == c).sum(axis=1) for c in range(k)], axis=1).astype(float)
    assert np.isclose(expected_accuracy(pat_scores, gold_counts), row_acc)

    acc, support = lf_accuracies(patterns, gold_counts)
    for j in range(m):
        voted = L[:, j] >= 0
        assert support[j] == voted.sum()
        assert np.isclose(acc[j], np.mean(L[voted, j] == y[voted]))


def test_lf_that_never_votes_has_nan_accuracy():
    patterns = np.array([[0, -1], [1, -1]])
    acc, support = lf_accuracies(patterns, np.array([[2, 1], [0, 3]]))
    assert support.tolist() == [6, 0]
    assert np.isclose(acc[0], 5 / 6) and np.isnan(acc[1])
