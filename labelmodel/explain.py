"""Why a label model gives one row its probabilities: the prior and each LF's share of the log-odds.

Every fitted model scores class ``y`` of a row as ``log_prior[y] + sum_j contribution[j, y]`` and
takes the softmax, except majority vote (which splits the probability among the most-voted
classes). :func:`explain_votes` returns those terms for one row of votes, so that, for the
``"bump"`` (precision model) and ``"table"`` (confusion model) parameter kinds,

    softmax(log_prior + contributions.sum(axis=0)) == predict_proba(row)

to floating-point rounding. Conventions: ``votes`` is one row of ``L``, shape ``[m]``, values in
``{-1, 0..k-1}``; ``contributions`` is ``[m, k]``.

* ``"bump"``: a vote for ``v`` adds ``weights[j, v]`` to class ``v`` and nothing elsewhere; an
  abstain adds nothing. Rows with at least one vote use the training class balance as prior (the
  weights are likelihood ratios against it), rows without votes the prediction prior.
* ``"table"``: LF ``j`` adds ``log P(L_j = votes[j] | y)`` to class ``y``, abstains included, each
  centered over the classes (a constant per LF cancels in the softmax), so an abstain that says
  nothing about the class contributes exactly zero.
* ``"majority"``: each vote adds 1 to its class (the vote counts); the probabilities are shared
  equally by the classes with the most votes, or the class prior when nobody voted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ._params import FittedParams
from .stats import ABSTAIN

__all__ = ["Explanation", "explain_votes", "softmax"]


@dataclass(frozen=True)
class Explanation:
    """The terms of one row's probabilities.

    Attributes
    ----------
    combine : {"softmax", "majority"}
        How the terms make the probabilities: ``softmax(log_prior + contributions.sum(0))``, or
        majority vote over ``contributions.sum(0)`` (vote counts).
    log_prior : ndarray, shape [k]
        Log class prior used for this row (normalized).
    contributions : ndarray, shape [m, k]
        Each LF's additive share of every class's score (zero rows for LFs that add nothing).
    weights : ndarray, shape [m]
        How much LF ``j``'s vote raises its class against the others: its contribution to the
        voted class minus its mean contribution to the other classes; NaN where it abstained.
    precision : ndarray, shape [m]
        The model's estimate of ``P(y = v | LF j votes v)`` for the vote cast; NaN where it abstained.
    probabilities : ndarray, shape [k]
        What ``predict_proba`` returns for the row.
    """

    combine: str
    log_prior: np.ndarray
    contributions: np.ndarray
    weights: np.ndarray
    precision: np.ndarray
    probabilities: np.ndarray

    @property
    def logits(self) -> np.ndarray:
        """``log_prior + contributions.sum(axis=0)``, shape [k]."""
        return self.log_prior + self.contributions.sum(axis=0)


def softmax(scores: np.ndarray) -> np.ndarray:
    """``exp(scores - logsumexp(scores))`` over the last axis."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.exp(scores - logsumexp(scores, axis=-1, keepdims=True))


def explain_votes(params: FittedParams, votes: np.ndarray) -> Explanation:
    """The prior and per-LF contributions behind ``params.predict_proba(votes[None])[0]``.

    Parameters
    ----------
    params : FittedParams
        A fitted model's parameters (``model.params_``).
    votes : array-like, shape [m]
        One row of votes in ``{-1, 0..k-1}``, LFs in the model's order.

    Returns
    -------
    Explanation
    """
    L = np.asarray(votes, dtype=np.int64).reshape(-1)
    m, k = params.n_lfs, params.k
    if L.shape[0] != m:
        raise ValueError(f"votes has {L.shape[0]} entries but the model was fitted on {m} LFs; pass one vote per LF")
    if ((L < ABSTAIN) | (L >= k)).any():
        raise ValueError(f"votes must be in -1..{k - 1}; got {sorted(set(L.tolist()))}")
    voted = np.flatnonzero(L != ABSTAIN)
    contrib = np.zeros((m, k))
    log_prior = np.asarray(params.log_prior, dtype=np.float64)
    if params.kind == "majority":
        combine = "majority"
        contrib[voted, L[voted]] = 1.0
    elif params.kind == "bump":
        combine = "softmax"
        if voted.size and params.train_log_prior is not None:
            log_prior = np.asarray(params.train_log_prior, dtype=np.float64)
        contrib[voted, L[voted]] = params.weights[voted, L[voted]]
    elif params.kind == "table":
        combine = "softmax"
        rows = params.log_table[np.arange(m), L + 1, :]  # [m, k]: log P(L_j = votes[j] | y)
        contrib = rows - rows.mean(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown parameter kind {params.kind!r}; expected majority, bump or table")
    log_prior = log_prior - logsumexp(log_prior)
    weights = np.full(m, np.nan)
    precision = np.full(m, np.nan)
    for j in voted:
        v = L[j]
        others = np.delete(contrib[j], v)
        weights[j] = contrib[j, v] - (others.mean() if others.size else 0.0)
        precision[j] = params.precision[j, v]
    probs = params.predict_proba(L[None, :])[0]
    return Explanation(combine, log_prior, contrib, weights, precision, probs)
