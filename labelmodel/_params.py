"""Fitted parameters shared by every estimator: what predict needs and what is saved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.special import logsumexp

from ._votes import bump_proba, table_proba
from .stats import ABSTAIN

Kind = Literal["majority", "bump", "table"]
_MAX_CONFUSION_CELLS = 50_000_000  # [m, k+1, k] float64 up to 400 MB


@dataclass
class FittedParams:
    """Parameters of a fitted label model.

    Attributes
    ----------
    kind : {"majority", "bump", "table"}
        ``"majority"``: plain vote counting. ``"bump"``: class score is
        ``log_prior[y] + sum of weights[j, v]`` over the LFs ``j`` voting ``v == y``
        (abstains add nothing). ``"table"``: score is
        ``log_prior[y] + sum_j log_table[j, L_j + 1, y]`` (abstains included).
    log_prior : ndarray, shape [k]
        Log class balance (normalized).
    weights : ndarray, shape [m, k], for ``"bump"``
    log_table : ndarray, shape [m, k+1, k], for ``"table"``
    precision : ndarray, shape [m, k]
        Estimated ``P(y = v | LF j votes v)``; NaN where LF ``j`` never voted ``v``.
    vote_rate : ndarray, shape [m, k]
        Fraction of rows on which LF ``j`` voted ``v`` (from the training statistics).
    train_log_prior : ndarray, shape [k], optional
        Log class balance of the training rows that ``precision`` refers to (defaults to
        ``log_prior``; differs when the prediction prior is shrunk). For ``"bump"``, rows
        with at least one vote are scored with it (the weights are likelihood ratios
        against it) and rows without votes get ``log_prior``.
    """

    kind: Kind
    log_prior: np.ndarray
    precision: np.ndarray
    vote_rate: np.ndarray
    weights: np.ndarray | None = None
    log_table: np.ndarray | None = None
    train_log_prior: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.log_prior)

    @property
    def n_lfs(self) -> int:
        return self.vote_rate.shape[0]

    @property
    def class_balance(self) -> np.ndarray:
        return np.exp(self.log_prior)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        if self.kind == "majority":
            return majority_proba(L, self.k, self.log_prior)
        if self.kind == "bump":
            # Rows with votes: the weights are likelihood ratios against the training
            # balance, so they are combined with it. Rows without any vote: ``log_prior``
            # (the class balance as shrunk for prediction; see ``class_balance_trust``).
            ref = self.log_prior if self.train_log_prior is None else self.train_log_prior
            out = bump_proba(L, ref, self.weights)
            if ref is not self.log_prior and not np.array_equal(ref, self.log_prior):
                empty = ~(L != ABSTAIN).any(axis=1)
                if empty.any():
                    out[empty] = np.exp(self.log_prior - logsumexp(self.log_prior))
            return out
        return table_proba(L, self.log_prior, self.log_table)

    def lf_accuracies(self) -> np.ndarray:
        """Vote-weighted precision of each LF; NaN for LFs that never voted."""
        rate = self.vote_rate
        tot = rate.sum(axis=1)
        prec = np.where(rate > 0, np.nan_to_num(self.precision), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, (rate * prec).sum(axis=1) / tot, np.nan)

    def confusion(self) -> np.ndarray:
        """``C[j, v + 1, y] = P(L_j = v | y)``, index 0 the abstain; shape [m, k+1, k]."""
        m, k = self.n_lfs, self.k
        if m * (k + 1) * k > _MAX_CONFUSION_CELLS:
            raise MemoryError(
                f"the confusion table would have {m * (k + 1) * k:,} cells "
                f"({m} LFs x {k + 1} x {k}); read precision/vote_rate instead"
            )
        if self.kind == "table":
            return np.exp(self.log_table)
        ref = self.log_prior if self.train_log_prior is None else self.train_log_prior
        pi = np.clip(np.exp(ref), 1e-12, 1.0)
        beta = self.vote_rate
        prec = np.where(np.isnan(self.precision), 0.0, self.precision)
        C = np.empty((m, k + 1, k))
        wrong = beta * (1.0 - prec) / np.clip(1.0 - pi, 1e-12, None)[None, :]  # [m, v]
        C[:, 1:, :] = wrong[:, :, None]
        idx = np.arange(k)
        C[:, 1 + idx, idx] = beta * prec / pi[None, :]
        voted = np.clip(C[:, 1:, :], 0.0, 1.0)
        total = voted.sum(axis=1)
        # An inconsistent estimate (more votes for a class than it has rows) is rescaled
        # so every column is a distribution (Snorkel #1733 returned negative values).
        scale = np.where(total > 1.0, 1.0 / np.where(total > 0, total, 1.0), 1.0)
        C[:, 1:, :] = voted * scale[:, None, :]
        C[:, 0, :] = 1.0 - C[:, 1:, :].sum(axis=1)
        return C


def majority_proba(L: np.ndarray, k: int, log_prior: np.ndarray) -> np.ndarray:
    """Majority vote: probability split equally among the most-voted classes; rows where
    every LF abstained get the class prior."""
    n, m = L.shape
    counts = vote_counts(L, k)
    mx = counts.max(axis=1, keepdims=True) if k else counts
    top = (counts == mx) & (mx > 0)
    out = top / np.maximum(top.sum(axis=1, keepdims=True), 1)
    empty = ~top.any(axis=1)
    if empty.any():
        out[empty] = np.exp(log_prior - logsumexp(log_prior))
    return out


def vote_counts(L: np.ndarray, k: int) -> np.ndarray:
    """Number of votes per class, shape [n, k]."""
    n, m = L.shape
    rows, cols = np.nonzero(L != ABSTAIN)
    flat = rows * k + L[rows, cols]
    return np.bincount(flat, minlength=n * k).reshape(n, k).astype(np.float64)
