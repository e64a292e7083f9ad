"""The default label model: chooses among the estimators without gold labels.

``LabelModel(method="auto")`` (the default) fits:

1. majority vote, when fewer than three LFs vote or no two LFs ever vote on the same row
   (no estimator can tell accurate LFs from inaccurate ones then; the reason is kept in
   ``fit_info_["fallback_reason"]``);
2. otherwise the confusion model (:mod:`labelmodel.confusion`) when at least
   ``confusion_vote_share`` of the votes come from LFs that vote several classes, else the
   precision model by EM over the vote-pattern table
   (:class:`~labelmodel.dawid_skene.DawidSkene`) when the statistics carry it, or by the
   moment estimator (:class:`~labelmodel.moments.MomentEstimator`) when they do not;
3. with dev labels (``L_dev`` and ``Y_dev``), the dev rows enter EM as labeled rows when a
   5-fold cross-fitted check on them gains more than ``DEV_Z`` standard errors over the
   unsupervised fit (``fit_info_["dev_use"]`` says which); ``Y_dev`` alone sets the class
   balance.

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
from .confusion import confusion_fits, fit_confusion_params, multi_class_vote_share
from .dawid_skene import fit_pattern_params
from .majority import majority_params, weighted_majority_params
from .moments import covoting_pairs, fit_moment_params, moment_requirements, pattern_votes
from .stats import SufficientStats

__all__ = ["LabelModel"]

# Above this many distinct patterns (the aggregate job's default cap), EM over the pattern
# table runs only when it is no larger than the moment summary (see _candidates).
EM_MAX_PATTERNS = 200_000
MIN_DEV_ROWS = 50  # fewer dev labels than this are not used
DEV_FOLDS = 5  # cross-fitting folds of the dev-label check
DEV_Z = 2.0  # dev labels are used when their cross-fitted gain exceeds this many standard errors


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
        if method == "confusion":
            return self._reduced(stats, lambda s: fit_confusion_params(s, cfg, class_balance))
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

    def _matrix_max_patterns(self, n_lfs: int) -> int:
        """With ``method="auto"``, a pattern table that :meth:`_candidates` would not use is
        not kept: past ``EM_MAX_PATTERNS`` patterns EM runs only when the table's votes
        (at least one per pattern but the all-abstain one) are no more than the co-voting
        pairs (fewer than ``(m * k) ** 2 / 2``). 1M x 20 x 3 keeps no table of 788,600 rows."""
        cap = self.config.max_patterns
        if self.config.method != "auto":
            return cap
        return min(cap, max(EM_MAX_PATTERNS, (n_lfs * self.cardinality) ** 2 // 2 + 1))

    def _reduced(self, stats: SufficientStats, fit: Any, labeled: tuple | None = None) -> FittedParams:
        """``fit(stats)``, or ``fit(stats, labeled)`` with dev rows, on the LFs left after
        merging identical columns, mapped back to every LF."""
        def call(s: SufficientStats, keep: np.ndarray | None) -> FittedParams:
            if labeled is None:
                return fit(s)
            L_lab, y_lab = labeled
            return fit(s, (L_lab if keep is None else L_lab[:, keep], y_lab))

        if not self.config.merge_duplicates:
            return call(stats, None)
        red, rep, keep = merge_duplicates(stats)
        p = call(red, keep if len(keep) < stats.n_lfs else None)
        if len(keep) == stats.n_lfs:
            return p
        return expand_params(p, rep, keep, stats.lf_names)

    def _candidates(self, stats: SufficientStats) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The unsupervised choice and the estimators that can run on ``stats``:
        ``(primary, {name: fit(class_balance) -> FittedParams}, info)``."""
        cfg = self.config
        use_patterns = stats.patterns is not None and len(stats.patterns) <= cfg.max_patterns
        if use_patterns and len(stats.patterns) > EM_MAX_PATTERNS:
            # EM over the pattern table costs O(votes in the table) per step; the moment
            # estimator O(co-voting (LF, class) pairs). Past EM_MAX_PATTERNS, the cheaper wins.
            use_patterns = pattern_votes(stats) <= covoting_pairs(stats)
        share = multi_class_vote_share(stats)
        fits: dict[str, Any] = {}
        if use_patterns:
            fits["dawid_skene"] = lambda cb, lab=None: self._reduced(
                stats, lambda s, d=None: fit_pattern_params(s, cfg, cb, labeled=d), lab)
        else:
            fits["moments"] = lambda cb, lab=None: self._reduced(stats, lambda s, d=None: fit_moment_params(s, cfg, cb))
        if use_patterns and confusion_fits(stats):
            fits["confusion"] = lambda cb, lab=None: self._reduced(
                stats, lambda s, d=None: fit_confusion_params(s, cfg, cb, labeled=d), lab)
        primary = "confusion" if "confusion" in fits and share >= cfg.confusion_vote_share else next(iter(fits))
        return primary, fits, {"multi_class_vote_share": share}

    def _fit_auto(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        reason = moment_requirements(stats)
        if reason is not None:
            p = majority_params(stats, class_balance)
            p.info.update(chosen="majority", fallback_reason=reason + "; using majority vote")
            return p
        primary, fits, info = self._candidates(stats)
        if dev is None:
            p = fits[primary](class_balance)
            p.info.update(info, chosen=primary)
            return p
        return self._select_on_dev(stats, class_balance, dev, primary, fits, info)

    def _select_on_dev(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple,
                       primary: str, fits: dict[str, Any], info: dict[str, Any]) -> FittedParams:
        """Dev labels enter the fit as labeled rows (semi-supervised EM), not as a selector.

        The estimator is the one chosen without dev labels; the dev rows' votes, with their
        gold classes, are added to the expected counts of every M-step, so an LF's dev
        votes count like its training votes whose class is known. Dev labels therefore
        refine the parameters and cannot pick a model that only looks good on a small dev
        set. Any number of dev rows works (few rows are little evidence); a class missing
        from ``Y_dev`` simply has no labeled rows. The class balance is EM's estimate with
        the dev rows counted, unless ``class_balance`` was given explicitly (the
        ``Y_dev`` class balance that ``fit`` derives is not forced on the model:
        a small dev set's balance is noisier than EM's).
        """
        cfg = self.config
        L_dev, Y_dev = dev
        k = stats.cardinality
        a = cfg.class_smoothing
        dev_balance = (np.bincount(Y_dev, minlength=k) + a) / (len(Y_dev) + k * a)
        from_dev = class_balance is not None and np.allclose(class_balance, dev_balance)
        balance = (None if cfg.class_balance is None else np.asarray(cfg.class_balance)) if from_dev else class_balance
        missing = [int(c) for c in np.flatnonzero(np.bincount(Y_dev, minlength=k) == 0)]
        unsup = fits[primary](balance)
        info = dict(info, chosen=primary, dev_rows=int(len(Y_dev)), dev_missing_classes=missing)
        if primary == "moments" or len(Y_dev) < MIN_DEV_ROWS:
            why = ("the moment estimator takes no labeled rows" if primary == "moments" else
                   f"{len(Y_dev)} dev labels < {MIN_DEV_ROWS}: too few to check that they help")
            unsup.info.update(info, dev_use=f"unused ({why})")
            return unsup
        L_dev = np.asarray(L_dev)
        Y_dev = np.asarray(Y_dev, dtype=np.int64)
        # cross-fitting: each fold is predicted by a fit that saw the other folds' labels
        fold = np.arange(len(Y_dev)) % DEV_FOLDS
        cv = np.empty((len(Y_dev), k))
        for f in range(DEV_FOLDS):
            out = fold == f
            cv[out] = fits[primary](balance, (L_dev[~out], Y_dev[~out])).predict_proba(L_dev[out])
        gain = _credit(cv, Y_dev) - _credit(unsup.predict_proba(L_dev), Y_dev)
        se = float(np.std(gain)) / math.sqrt(len(gain))
        info.update(dev_accuracy_gain=float(gain.mean()), dev_accuracy_gain_se=se)
        if not gain.mean() > DEV_Z * se:
            why = (f"the dev labels change no cross-fitted prediction on the {len(gain)} dev rows" if not gain.any()
                   else f"cross-fitted gain {gain.mean():+.4f} is not above {DEV_Z:g} standard errors, {DEV_Z * se:.4f}")
            unsup.info.update(info, dev_use=f"unused ({why})")
            return unsup
        p = fits[primary](balance, (L_dev, Y_dev))
        p.info.update(info, dev_use="labeled rows in EM")
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
def _credit(probs: np.ndarray, y: np.ndarray, tol: float = 1e-5) -> np.ndarray:
    """Per-row expected accuracy under random tie breaking."""
    return tie_shares(probs, tol)[np.arange(len(y)), y]


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
