"""The default label model: chooses among the estimators without gold labels.

``LabelModel(method="auto")`` (the default) fits:

1. majority vote, when fewer than three LFs vote or no two LFs ever vote on the same row
   (no estimator can tell accurate LFs from inaccurate ones then; the reason is kept in
   ``fit_info_["fallback_reason"]``);
2. otherwise the precision model by EM over the vote-pattern table
   (:class:`~labelmodel.dawid_skene.DawidSkene`) when the statistics carry it, or by the
   moment estimator (:class:`~labelmodel.moments.MomentEstimator`) when they do not;
3. with dev labels (``L_dev`` and ``Y_dev``), the class balance comes from ``Y_dev`` and the
   model is the candidate (the one above, weighted majority, majority, and full-table
   Dawid-Skene when small enough) with the best dev accuracy; the default is kept unless
   another candidate beats it by more than one standard error.

Identical LF columns are fitted once (``merge_duplicates``). Why these choices, and how
they were validated on synthetic data with known parameters, is in ``labelmodel/README.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import BaseLabelModel
from ._params import FittedParams
from ._prep import expand_params, merge_duplicates
from .dawid_skene import fit_pattern_params
from .majority import majority_params, weighted_majority_params
from .moments import fit_moment_params, moment_requirements
from .stats import SufficientStats

__all__ = ["LabelModel"]

_FULL_MAX_CELLS = 2_000_000  # full-table Dawid-Skene considered on dev only up to this size


class LabelModel(BaseLabelModel):
    """Snorkel-compatible label model, fitted from sufficient statistics.

    Parameters
    ----------
    cardinality : int
        Number of classes.
    config : LabelModelConfig, optional
    **kwargs
        :class:`~labelmodel.config.LabelModelConfig` fields, e.g. ``seed=0``,
        ``method="auto"``, ``tie_break_policy="random"``.

    Examples
    --------
    >>> lm = LabelModel(cardinality=2).fit(L_train)          # doctest: +SKIP
    >>> lm.predict(L, tie_break_policy="random", row_ids=ids)  # doctest: +SKIP
    """

    @property
    def _method(self) -> str:  # type: ignore[override]
        return self.config.method

    def _fit_stats(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        cfg = self.config
        method = cfg.method
        if method == "majority":
            return majority_params(stats, class_balance)
        if method == "weighted_majority":
            return weighted_majority_params(stats, cfg, class_balance)
        if method == "dawid_skene":
            if stats.patterns is None:
                raise ValueError(
                    "method='dawid_skene' needs the vote-pattern table, but these statistics have "
                    "none (more distinct patterns than max_patterns); use method='auto' or 'moments'"
                )
            return self._reduced(stats, lambda s: fit_pattern_params(s, cfg, class_balance))
        if method == "moments":
            reason = moment_requirements(stats)
            if reason is not None:
                raise ValueError(f"{reason}; add LFs, or use method='auto' (falls back to majority vote)")
            return self._reduced(stats, lambda s: fit_moment_params(s, cfg, class_balance))
        return self._fit_auto(stats, class_balance, dev)

    def _reduced(self, stats: SufficientStats, fit: Any) -> FittedParams:
        if not self.config.merge_duplicates:
            return fit(stats)
        red, rep, keep = merge_duplicates(stats)
        p = fit(red)
        if len(keep) == stats.n_lfs:
            return p
        return expand_params(p, rep, keep, stats.lf_names)

    def _fit_auto(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        cfg = self.config
        reason = moment_requirements(stats)
        if reason is not None:
            p = majority_params(stats, class_balance)
            p.info.update(chosen="majority", fallback_reason=reason + "; using majority vote")
            return p
        use_patterns = stats.patterns is not None and len(stats.patterns) <= cfg.max_patterns
        primary = "dawid_skene" if use_patterns else "moments"

        def fit_primary() -> FittedParams:
            if use_patterns:
                return self._reduced(stats, lambda s: fit_pattern_params(s, cfg, class_balance))
            return self._reduced(stats, lambda s: fit_moment_params(s, cfg, class_balance))

        if dev is None:
            p = fit_primary()
            p.info["chosen"] = primary
            return p

        L_dev, Y_dev = dev
        candidates: dict[str, Any] = {
            primary: fit_primary,
            "weighted_majority": lambda: weighted_majority_params(stats, cfg, class_balance),
            "majority": lambda: majority_params(stats, class_balance),
        }
        k = stats.cardinality
        if use_patterns and cfg.parameterization == "precision" and stats.n_lfs * (k + 1) * k <= _FULL_MAX_CELLS:
            candidates["dawid_skene_full"] = lambda: self._reduced(
                stats, lambda s: fit_pattern_params(s, cfg, class_balance, parameterization="full")
            )
        fitted, scores = {}, {}
        for name, make in candidates.items():
            fitted[name] = make()
            scores[name] = expected_accuracy(fitted[name].predict_proba(L_dev), Y_dev)
        best = max(scores, key=lambda n: scores[n])
        base = scores[primary]
        se = math.sqrt(max(base * (1 - base), 1e-12) / len(Y_dev))
        chosen = best if scores[best] > base + se else primary
        p = fitted[chosen]
        p.info.update(chosen=chosen, dev_accuracy=scores, dev_rows=int(len(Y_dev)))
        return p


def tie_shares(probs: np.ndarray, tol: float = 1e-5) -> np.ndarray:
    """Each row's hard label as shares, shape [n, k]: 1 / (number of tied top classes) on each.

    The one tie rule of lakelabel's metrics: classes within ``tol`` of the row's top probability
    are tied and share the row equally (uniform random tie breaking, in expectation).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0:
        return np.zeros(probs.shape, dtype=np.float64)
    tied = probs >= probs.max(axis=1, keepdims=True) - tol
    return tied / tied.sum(axis=1, keepdims=True)


def expected_accuracy(
    probs: np.ndarray, y: np.ndarray, tol: float = 1e-5, sample_weight: np.ndarray | None = None
) -> float:
    """Accuracy when ties are broken uniformly at random, in expectation.

    ``sample_weight`` counts how many rows each row of ``probs`` stands for (e.g. the rows
    sharing one vote pattern and one gold class).
    """
    if len(y) == 0:
        return math.nan
    credit = tie_shares(probs, tol)[np.arange(len(y)), y]
    if sample_weight is None:
        return float(np.mean(credit))
    total = float(np.sum(sample_weight))
    return float(np.dot(credit, sample_weight) / total) if total else math.nan
