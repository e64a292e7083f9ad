"""Synthetic label matrices that rebuild the failure shapes of lakelabel issue 8.

Each generator returns ``(L_train, y_train, L_test, y_test, k)`` drawn from a known model,
so a label model can be scored where the real task is out of reach. The shapes:

- ``unipolar_rare_f1``: binary, 73 LFs that each vote one class, about 45% of rows covered,
  13% positive class, the positive LFs covering little of the positive class, scored by F1
  of class 1 (the WRENCH SMS shape: there majority vote's F1 is near that of guessing on the
  uncovered rows, and an estimated class balance that favours the negative class loses it);
- ``unipolar_many_classes``: 9 classes, 164 precise one-class LFs, every row covered by one
  to a few of them, unequal classes (the WRENCH SemEval shape);
- ``unipolar_low_coverage``: binary, 10 one-class LFs of unequal quality, 25% coverage;
- ``unipolar_imbalanced_dependent``: 3 classes (70/25/5%), 18 one-class LFs, sub-topics make
  the LFs of a class conditionally dependent, about half the rows covered;
- ``sparse_workers``: 5 classes, 300 crowd workers with their own confusion matrices
  (some biased toward one class, some confusing neighbouring grades), 3 answers per item;
- ``sparse_workers_rare``: binary crowd task, 200 workers, 3 answers per item, 10%
  positive class, a third of the workers answering "1" too easily;
- ``unipolar_broad_vs_precise``: binary, about 50/50, one broad LF of class 0 (65% of rows,
  71% precise, like the people loop's suggested ``length(CONTENT) < 71`` ham rule), five
  precise narrower LFs of class 1 and one of class 0. The broad LF shares its rows mostly
  with class-1 LFs on class-1 rows, so EM without the better-than-chance assumption put its
  precision below one half and sent its lone rows (about 40% of all, 80% class 0) to class 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Shape = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


def _split(L: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator) -> Shape:
    idx = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    return L[idx[:cut]], y[idx[:cut]], L[idx[cut:]], y[idx[cut:]], k


def unipolar_rare_f1(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k = 5000, 2
    y = (rng.random(n) < 0.13).astype(np.int64)
    m_pos, m_neg = 45, 28
    lf_class = np.r_[np.ones(m_pos, int), np.zeros(m_neg, int)]
    # spam keyword LFs fire rarely, about as often on ham as on spam; ham LFs fire more often
    hit = np.r_[rng.uniform(0.001, 0.006, m_pos), rng.uniform(0.01, 0.03, m_neg)]
    false = np.r_[rng.uniform(0.001, 0.006, m_pos), rng.uniform(0.001, 0.01, m_neg)]
    on = y[:, None] == lf_class[None, :]
    fire = rng.random((n, len(lf_class))) < np.where(on, hit, false)
    L = np.where(fire, lf_class[None, :], -1)
    return _split(L, y, k, rng)


def unipolar_many_classes(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k, m = 6000, 9, 164
    balance = rng.dirichlet(np.full(k, 2.0))
    y = rng.choice(k, size=n, p=balance)
    lf_class = np.r_[np.arange(k), rng.choice(k, size=m - k, p=balance)]
    precision = rng.uniform(0.55, 0.98, m)
    by_class = [np.flatnonzero(lf_class == c) for c in range(k)]
    L = np.full((n, m), -1)
    for i in range(n):
        for _ in range(1 + rng.poisson(0.8)):
            # a vote comes from an LF of the true class with that LF's precision ...
            j = rng.choice(by_class[y[i]])
            if rng.random() > precision[j]:
                # ... otherwise from an LF of another class firing by mistake
                j = rng.choice(np.flatnonzero(lf_class != y[i]))
            L[i, j] = lf_class[j]
    return _split(L, y, k, rng)


def unipolar_low_coverage(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k = 4000, 2
    y = (rng.random(n) < 0.35).astype(np.int64)
    lf_class = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    hit = rng.uniform(0.03, 0.12, 10)
    false = hit * rng.uniform(0.05, 0.5, 10)
    on = y[:, None] == lf_class[None, :]
    fire = rng.random((n, 10)) < np.where(on, hit, false)
    L = np.where(fire, lf_class[None, :], -1)
    return _split(L, y, k, rng)


def unipolar_imbalanced_dependent(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k, m, subtopics = 8000, 3, 18, 3
    lf_class = np.repeat(np.arange(k), 6)
    hit = rng.uniform(0.05, 0.3, m)
    false = rng.uniform(0.002, 0.05, m)
    y = rng.choice(k, size=n, p=[0.7, 0.25, 0.05])
    sub = rng.integers(0, subtopics, size=n)
    lf_sub = rng.integers(0, subtopics, size=m)
    on = (y[:, None] == lf_class[None, :]) & (sub[:, None] == lf_sub[None, :])
    fire = rng.random((n, m)) < np.clip(np.where(on, hit * subtopics, false), 0, 1)
    L = np.where(fire, lf_class[None, :], -1)
    return _split(L, y, k, rng)


def _crowd(rng: np.random.Generator, n: int, k: int, n_workers: int, per_item: int,
           balance: np.ndarray, confusions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = rng.choice(k, size=n, p=balance)
    L = np.full((n, n_workers), -1)
    activity = rng.pareto(1.2, n_workers) + 0.2  # few workers do most of the items
    activity /= activity.sum()
    for i in range(n):
        for w in rng.choice(n_workers, size=per_item, replace=False, p=activity):
            L[i, w] = rng.choice(k, p=confusions[w, y[i]])
    return L, y


def sparse_workers(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k, W = 3000, 5, 300
    conf = np.empty((W, k, k))
    for w in range(W):
        acc = rng.uniform(0.35, 0.9)
        kind = rng.random()
        for c in range(k):
            if kind < 0.5:  # confuses neighbouring grades
                row = np.exp(-np.abs(np.arange(k) - c) * rng.uniform(0.7, 2.0))
            elif kind < 0.7:  # leans toward one grade
                row = np.full(k, 0.1)
                row[rng.integers(k)] += 1.0
            else:
                row = np.ones(k)
            row[c] = 0.0
            conf[w, c] = (1 - acc) * row / row.sum()
            conf[w, c, c] = acc
    L, y = _crowd(rng, n, k, W, 3, np.full(k, 1.0 / k), conf)
    return _split(L, y, k, rng)


def sparse_workers_rare(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k, W = 5000, 2, 200
    conf = np.empty((W, k, k))
    for w in range(W):
        fp = rng.uniform(0.15, 0.4) if rng.random() < 1 / 3 else rng.uniform(0.0, 0.08)
        fn = rng.uniform(0.05, 0.3)
        conf[w] = [[1 - fp, fp], [fn, 1 - fn]]
    L, y = _crowd(rng, n, k, W, 3, np.array([0.9, 0.1]), conf)
    return _split(L, y, k, rng)


def unipolar_broad_vs_precise(seed: int) -> Shape:
    rng = np.random.default_rng(seed)
    n, k = 3000, 2
    y = (rng.random(n) < 0.5).astype(np.int64)
    lf_class = np.array([0, 1, 1, 1, 1, 1, 0])
    # broad class-0 LF: P(fire | 0) = 0.936, P(fire | 1) = 0.364 -> 65% coverage, 72% precise
    hit = np.r_[0.936, rng.uniform(0.1, 0.3, 6)]
    false = np.r_[0.364, rng.uniform(0.003, 0.015, 6)]
    on = y[:, None] == lf_class[None, :]
    fire = rng.random((n, len(lf_class))) < np.where(on, hit, false)
    L = np.where(fire, lf_class[None, :], -1)
    return _split(L, y, k, rng)


SHAPES: dict[str, tuple[Callable[[int], Shape], str]] = {
    "unipolar_rare_f1": (unipolar_rare_f1, "f1"),
    "unipolar_many_classes": (unipolar_many_classes, "acc"),
    "unipolar_low_coverage": (unipolar_low_coverage, "acc"),
    "unipolar_imbalanced_dependent": (unipolar_imbalanced_dependent, "acc"),
    "sparse_workers": (sparse_workers, "acc"),
    "sparse_workers_rare": (sparse_workers_rare, "f1"),
    "unipolar_broad_vs_precise": (unipolar_broad_vs_precise, "acc"),
}
