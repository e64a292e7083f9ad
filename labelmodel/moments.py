"""Moment estimator: the precision model fitted from second-order overlap statistics only.

When the vote-pattern table is too large to keep (``stats.patterns is None``), the data
are summarized by ``overlap`` (how often each pair of (LF, class) votes co-occur), the
per-LF counts, and how many of each LF's votes were cast alone. This estimator runs the
same EM as :class:`~labelmodel.dawid_skene.DawidSkene` (``parameterization="precision"``)
over *pseudo-rows* built from those moments, a pairwise composite likelihood:

* one pseudo-row per LF vote cast with no other vote on the row (exact counts from
  ``lf_coverage - lf_overlap``);
* one pseudo-row per co-occurring pair of votes, weighted so that each LF's pairs add up
  to the number of rows it shared with other LFs, and all pairs add up to the number of
  rows with two or more votes;
* the rows where every LF abstained.

Rows with exactly one or two votes are represented exactly; a row with three or more
votes is replaced by its pairs. Cost: O(number of co-voting (LF, class) pairs), never
O(rows). Like every latent-variable method it needs at least three LFs that vote, and
some rows where LFs vote together; otherwise :meth:`MomentEstimator.fit_from_stats` says
why, and :class:`~labelmodel.LabelModel` falls back to majority vote.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ._base import BaseLabelModel
from ._params import FittedParams
from ._prep import expand_params, merge_duplicates
from ._votes import VoteTable
from .dawid_skene import bump_params, em_balance, em_balance_info, held_at_chance, precision_em
from .stats import SufficientStats

__all__ = ["MomentEstimator", "moment_requirements", "MIN_LFS", "covoting_pairs", "pattern_votes"]

MIN_LFS = 3


def moment_requirements(stats: SufficientStats) -> str | None:
    """Why the moment estimator cannot run on ``stats``, or None when it can."""
    active = np.flatnonzero(np.asarray(stats.lf_coverage) > 0)
    if len(active) < MIN_LFS:
        names = ", ".join(stats.lf_names[i] for i in active) or "none"
        return (
            f"the moment estimator needs at least {MIN_LFS} LFs that vote to tell accurate LFs "
            f"from inaccurate ones; {len(active)} vote ({names})"
        )
    if stats.n_overlapped == 0:
        return (
            "no two LFs ever vote on the same row, so the overlap statistics carry no "
            "information about LF accuracy"
        )
    return None


def covoting_pairs(stats: SufficientStats) -> int:
    """Pairs of (LF, class) votes of two different LFs that co-occur on some row: the
    pseudo-rows of the moment estimator (its cost per EM step)."""
    O = stats.overlap
    nnz = O.nnz if sp.issparse(O) else int(np.count_nonzero(O))
    diag = int(np.count_nonzero(stats.class_vote_counts()))
    return (nnz - diag) // 2


def pattern_votes(stats: SufficientStats) -> int:
    """Votes in the distinct-pattern table (EM's cost per step over patterns)."""
    if stats.patterns is None:
        return 0
    return int(np.count_nonzero(stats.patterns != -1))


def pseudo_vote_table(stats: SufficientStats) -> VoteTable:
    """Pseudo-rows (see the module docstring) as a weighted vote table."""
    m, k, n = stats.n_lfs, stats.cardinality, stats.n_rows
    cnt = stats.class_vote_counts().astype(np.float64)  # [m, k]
    cov = np.asarray(stats.lf_coverage, dtype=np.float64)
    ovl = np.asarray(stats.lf_overlap, dtype=np.float64)
    alone_frac = np.where(cov > 0, (cov - ovl) / np.where(cov > 0, cov, 1.0), 0.0)
    alone = cnt * alone_frac[:, None]  # [m, k]

    O = stats.overlap
    if sp.issparse(O):
        coo = sp.coo_array(sp.triu(sp.csr_array(O), k=1))
        a, b, o = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
    else:
        a, b = np.nonzero(np.triu(np.asarray(O), k=1))
        o = np.asarray(O)[a, b].astype(np.float64)
    keep = (a // k != b // k) & (o > 0)
    a, b, o = a[keep], b[keep], o[keep]

    # each unit's pairs are rescaled to the rows it shared: covoted = cnt - alone
    pair_sum = np.bincount(a, weights=o, minlength=m * k) + np.bincount(b, weights=o, minlength=m * k)
    covoted = (cnt - alone).reshape(-1)
    scale = np.where(pair_sum > 0, covoted / np.where(pair_sum > 0, pair_sum, 1.0), 0.0)
    row_scale = stats.n_overlapped / o.sum() if o.sum() > 0 else 0.0

    ua = np.flatnonzero(alone.reshape(-1) > 0)
    n_alone, n_pairs = len(ua), len(o)
    n_uncovered = n - stats.n_covered
    # pseudo-rows: [alone votes..., pairs..., uncovered]
    row = np.concatenate([np.arange(n_alone), np.repeat(n_alone + np.arange(n_pairs), 2)])
    units = np.concatenate([ua, np.stack([a, b], axis=1).reshape(-1)])
    vote_weight = np.concatenate(
        [alone.reshape(-1)[ua], np.stack([o * scale[a], o * scale[b]], axis=1).reshape(-1)]
    )
    row_weight = np.concatenate([alone.reshape(-1)[ua], o * row_scale, [float(n_uncovered)]])
    return VoteTable(
        row=row.astype(np.int64),
        lf=(units // k).astype(np.int64),
        cls=(units % k).astype(np.int64),
        row_weight=row_weight,
        n_rows=n_alone + n_pairs + 1,
        n_lfs=m,
        k=k,
        vote_weight=vote_weight,
    )


def fit_moment_params(stats: SufficientStats, cfg: Any, class_balance: np.ndarray | None,
                      n_steps: int | None = None) -> FittedParams:
    """The precision model from ``stats.overlap`` -> :class:`FittedParams`."""
    vt = pseudo_vote_table(stats)
    r = precision_em(vt, prior_strength=cfg.prior_strength * stats.n_rows,
                     prior_precision=cfg.prior_precision, class_smoothing=cfg.class_smoothing,
                     max_iter=cfg.max_iter, tol=cfg.tol, n_steps=n_steps,
                     class_evidence_floor=cfg.class_evidence_floor, better_than_chance=cfg.better_than_chance,
                     fixed_balance=em_balance(cfg, class_balance, stats.cardinality))
    cnt = stats.class_vote_counts().astype(np.float64)
    info = {"parameterization": "precision", "estimator": "moments", "n_iter": r["n_iter"],
            "converged": r["converged"], "n_pseudo_rows": int(vt.n_rows),
            "held_at_chance": held_at_chance(r["at_chance"], stats.lf_names), **em_balance_info(cfg, class_balance)}
    return bump_params(r, cnt, cnt / stats.n_rows, class_balance, info, cfg.class_balance_trust,
                       cfg.abstain_evidence, stats.n_covered / stats.n_rows, cfg.better_than_chance, stats.lf_names)


class MomentEstimator(BaseLabelModel):
    """The precision label model fitted from overlap statistics (no pattern table needed).

    Parameters
    ----------
    cardinality : int
    **kwargs
        :class:`~labelmodel.config.LabelModelConfig` fields.
    """

    _method = "moments"

    def __init__(self, cardinality: int = 2, **kwargs: Any):
        kwargs.setdefault("method", "moments")
        super().__init__(cardinality, **kwargs)

    def _fit_stats(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        reason = moment_requirements(stats)
        if reason is not None:
            raise ValueError(f"{reason}; add LFs, or use MajorityLabelVoter / LabelModel(method='auto')")
        if self.config.merge_duplicates:
            red, rep, keep = merge_duplicates(stats)
        else:
            red, rep, keep = stats, np.arange(stats.n_lfs), np.arange(stats.n_lfs)
        p = fit_moment_params(red, self.config, class_balance)
        return expand_params(p, rep, keep, stats.lf_names) if len(keep) < stats.n_lfs else p
