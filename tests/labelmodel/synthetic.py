"""Label matrices drawn from generative models with known parameters (test helpers)."""

from __future__ import annotations

import numpy as np


def sample_symmetric(
    n: int,
    accuracies: np.ndarray,
    coverages: np.ndarray,
    class_balance: np.ndarray,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Conditionally independent LFs: LF j votes on a row with probability ``coverages[j]``,
    the true class with probability ``accuracies[j]``, otherwise a uniformly drawn wrong class."""
    rng = np.random.default_rng(seed)
    k, m = len(class_balance), len(accuracies)
    y = rng.choice(k, size=n, p=class_balance)
    fire = rng.random((n, m)) < coverages[None, :]
    right = rng.random((n, m)) < accuracies[None, :]
    wrong = (y[:, None] + rng.integers(1, k, size=(n, m))) % k
    L = np.where(fire, np.where(right, y[:, None], wrong), -1)
    return L.astype(np.int64), y


def sample_unipolar(
    n: int,
    lf_class: np.ndarray,
    hit_rate: np.ndarray,
    false_rate: np.ndarray,
    class_balance: np.ndarray,
    seed: int = 0,
    subtopics: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """LFs that each vote one class (like keyword LFs).

    LF j fires on rows of its class with probability ``hit_rate[j]`` and on rows of other
    classes with ``false_rate[j]``. With ``subtopics > 1`` each class has sub-topics and each
    LF only fires on one of its class's sub-topics, so LFs of a class are conditionally
    dependent (some never fire together, some always can).
    """
    rng = np.random.default_rng(seed)
    k, m = len(class_balance), len(lf_class)
    y = rng.choice(k, size=n, p=class_balance)
    sub = rng.integers(0, subtopics, size=n)
    lf_sub = rng.integers(0, subtopics, size=m)
    on_class = (y[:, None] == lf_class[None, :]) & (sub[:, None] == lf_sub[None, :])
    rate = np.where(on_class, hit_rate[None, :] * subtopics, false_rate[None, :])
    fire = rng.random((n, m)) < np.clip(rate, 0, 1)
    L = np.where(fire, lf_class[None, :], -1)
    return L.astype(np.int64), y


def empirical_precision(L: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fraction of each LF's votes that equal the gold label (NaN if it never voted)."""
    voted = L != -1
    right = (L == y[:, None]) & voted
    with np.errstate(invalid="ignore"):
        return right.sum(axis=0) / voted.sum(axis=0)
