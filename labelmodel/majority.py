"""Majority vote and weighted majority vote."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import BaseLabelModel
from ._params import FittedParams, majority_proba
from ._prep import expand_params, merge_duplicates
from ._votes import BumpPosterior, VoteTable
from .dawid_skene import _mv_init, fit_pattern_params
from .moments import fit_moment_params
from .stats import SufficientStats

__all__ = ["MajorityLabelVoter", "WeightedMajorityVoter"]


class MajorityLabelVoter(BaseLabelModel):
    """Majority vote (Snorkel's ``MajorityLabelVoter``).

    ``predict_proba`` splits probability equally among the most-voted classes; rows where
    every LF abstained get the class balance (uniform unless ``class_balance`` or ``Y_dev``
    was given to ``fit``). Fitting only records the LF names, the class balance and, when
    the statistics carry patterns, each LF's agreement with the majority
    (:meth:`estimated_accuracies`).
    """

    _method = "majority"

    def __init__(self, cardinality: int = 2, **kwargs: Any):
        kwargs.setdefault("method", "majority")
        super().__init__(cardinality, **kwargs)

    def predict_proba(self, L: Any) -> np.ndarray:
        """Majority vote; like Snorkel's, usable without ``fit`` (uniform class prior)."""
        if self.params_ is not None:
            return super().predict_proba(L)
        L = self._check_L(L, "L", fitted=False, allow_empty=True)
        k = self.cardinality
        return majority_proba(L, k, np.full(k, -np.log(k)))

    def _fit_stats(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        return majority_params(stats, class_balance)


def majority_params(stats: SufficientStats, class_balance: np.ndarray | None) -> FittedParams:
    k = stats.cardinality
    cnt = stats.class_vote_counts().astype(np.float64)
    prec = np.full(cnt.shape, np.nan)
    if stats.patterns is not None:
        vt = VoteTable.from_stats(stats)
        A_votes, _ = _mv_init(vt, BumpPosterior(vt))
        A = np.bincount(vt.lf * k + vt.cls, weights=A_votes, minlength=stats.n_lfs * k).reshape(-1, k)
        prec = np.where(cnt > 0, A / np.where(cnt > 0, cnt, 1.0), np.nan)
    balance = np.full(k, 1.0 / k) if class_balance is None else class_balance
    return FittedParams(kind="majority", log_prior=np.log(balance), precision=prec,
                        vote_rate=cnt / stats.n_rows, info={"estimator": "majority"})


class WeightedMajorityVoter(BaseLabelModel):
    """Weighted majority vote: one EM step of the precision model from majority vote.

    Each LF's precision is its (prior-smoothed) agreement with the majority-vote
    posteriors, and its vote counts ``logit(precision) - logit(base rate)``, plus the log
    class balance. Uses the pattern table when present, the overlap moments otherwise.
    """

    _method = "weighted_majority"

    def __init__(self, cardinality: int = 2, **kwargs: Any):
        kwargs.setdefault("method", "weighted_majority")
        super().__init__(cardinality, **kwargs)

    def _fit_stats(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        return weighted_majority_params(stats, self.config, class_balance)


def weighted_majority_params(stats: SufficientStats, cfg: Any, class_balance: np.ndarray | None) -> FittedParams:
    if cfg.merge_duplicates:
        red, rep, keep = merge_duplicates(stats)
    else:
        red, rep, keep = stats, np.arange(stats.n_lfs), np.arange(stats.n_lfs)
    if red.patterns is not None:
        p = fit_pattern_params(red, cfg, class_balance, parameterization="precision", n_steps=1)
    else:
        p = fit_moment_params(red, cfg, class_balance, n_steps=1)
    p.info["estimator"] = "weighted_majority"
    return expand_params(p, rep, keep, stats.lf_names) if len(keep) < stats.n_lfs else p
