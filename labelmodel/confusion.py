"""Dawid-Skene with a confusion matrix per LF and Dirichlet priors, over vote patterns.

The model of crowdsourcing (Dawid and Skene, 1979), in its Bayesian form (Kim and
Ghahramani, 2012, "Bayesian classifier combination"), fitted by MAP-EM:

* each LF (or worker) ``j`` has a confusion matrix ``C[j, y, v] = P(L_j = v | y, j votes)``:
  which class it says when it says something and the truth is ``y``. It learns that a
  worker confuses neighbouring grades, or says "1" too easily, which a single precision
  per vote cannot express;
* abstaining is uninformative: only votes enter the likelihood. On crowd data who
  answers which item is an assignment, not a signal;
* every row ``C[j, y, :]`` has a Dirichlet prior worth ``prior_strength`` pseudo-votes,
  centred partly on "votes are right" (a share ``prior_accuracy`` on the diagonal, the
  rest spread evenly) and partly (``pooling``) on the pooled confusion matrix of all LFs,
  re-estimated every step (a hierarchical, empirical-Bayes prior in the spirit of
  Kim and Ghahramani's and of EBCC's shared structure). An LF with few votes stays close
  to an accurate voter with the crowd's typical mix-ups; one with many votes gets its
  own confusion matrix;
* the class balance is EM's estimate shrunk toward uniform by ``class_shrink * n_rows``
  pseudo-rows (without it, a class can absorb the rows whose votes disagree).

Why not the default for every matrix: an LF that only ever votes one class (unipolar,
the common shape of keyword LFs) has ``C[j, y, c] = 1`` for every ``y`` under this model,
so its votes carry no information, and EM collapses to one class (crowd-kit's Dawid-Skene
scores 27.6 on trec and 52.8 on youtube that way). :mod:`labelmodel.model` therefore uses
this estimator only when most votes come from LFs that vote several classes.

EM starts from majority vote and is deterministic. Its cost per step is two products of
the distinct patterns with per-(LF, class) tables (:mod:`labelmodel._products`: sparse over
the votes, or through sub-pattern tables of blocks of LFs when that reads fewer entries).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._params import FittedParams
from ._products import BlockProducts, SparseProducts, pattern_products, vote_products
from ._squarem import squarem
from ._votes import VoteTable
from .stats import SufficientStats

__all__ = ["confusion_em", "fit_confusion_params", "confusion_fits", "multi_class_vote_share"]

MAX_TABLE_CELLS = 20_000_000  # m * k * k of the confusion tables (160 MB of float64)


def confusion_fits(stats: SufficientStats) -> bool:
    """Whether the confusion tables of ``stats`` fit in :data:`MAX_TABLE_CELLS`."""
    k = stats.cardinality
    return stats.patterns is not None and stats.n_lfs * (k + 1) * k <= MAX_TABLE_CELLS


def multi_class_vote_share(stats: SufficientStats) -> float:
    """Share of all votes cast by LFs that vote at least two different classes.

    Near 0 for LF matrices of keyword-style LFs (each votes one class), near 1 for crowd
    workers (each answers with any class). Computed from the per-(LF, class) vote counts.
    """
    counts = np.asarray(stats.class_vote_counts(), dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    multi = (counts > 0).sum(axis=1) >= 2
    return float(counts[multi].sum() / total)


def confusion_em(
    vt: VoteTable | SparseProducts | BlockProducts,
    *,
    prior_strength: float,
    prior_accuracy: float,
    class_shrink: float,
    max_iter: int,
    tol: float,
    pooling: float = 0.0,
    labeled: tuple[np.ndarray, np.ndarray] | None = None,
    posterior: bool = True,
) -> dict[str, Any]:
    """MAP-EM of the Dirichlet-prior confusion model over a (weighted) vote table.

    Parameters
    ----------
    vt : VoteTable, SparseProducts or BlockProducts
        Votes of rows or of distinct patterns (``row_weight`` = counts), or their products
        (:mod:`labelmodel._products`; by default the cheaper of the two is built).
    prior_strength : float
        Pseudo-votes of the Dirichlet prior on each confusion row ``C[j, y, :]``.
    prior_accuracy : float
        Share of the pseudo-votes on the diagonal (the prior ``P(L_j = y | y)``).
    class_shrink : float
        Pseudo-rows toward the uniform class balance, as a fraction of the rows.
    pooling : float
        Share of each row's pseudo-votes centred on the pooled confusion matrix of all LFs
        (recomputed every M-step) instead of on "the vote is right": an empirical-Bayes
        (hierarchical) prior, so a worker with few answers borrows the crowd's typical
        mix-ups rather than a symmetric guess.
    max_iter, tol : int, float
        EM stops when one step moves no confusion-matrix entry or class-balance probability by more than
        ``tol``, or after ``max_iter`` steps (where the likelihood is flat, with few or barely overlapping LFs,
        it can take thousands: the fit then warns, :class:`~labelmodel.ConvergenceWarning`).
    labeled : (L [n_lab, m], y [n_lab]), optional
        Rows with gold labels (dev labels): their votes enter every M-step with known
        classes (semi-supervised EM), and their classes the class balance.
    posterior : bool
        Whether to return the rows' posteriors (one more E-step).

    Returns
    -------
    dict with ``log_conf`` [m, k, k] (``log C[j, y, v]``), ``log_prior`` [k], ``posterior``
    [n_rows, k] (None without ``posterior``), ``n_iter``, ``converged``, ``unit_counts`` [m, k].
    """
    prod = vt if isinstance(vt, (SparseProducts, BlockProducts)) else vote_products(vt)
    k, m = prod.k, prod.m
    total = prod.total
    unit_counts = prod.unit_counts()
    prior = np.full((k, k), (1.0 - prior_accuracy) / max(k - 1, 1))
    np.fill_diagonal(prior, prior_accuracy if k > 1 else 1.0)
    pseudo = np.broadcast_to(prior_strength * prior, (m, k, k)).copy()  # [j, y, v]
    lab_classes = np.zeros(k)
    if labeled is not None:
        L_lab, y_lab = labeled
        rr, jj = np.nonzero(np.asarray(L_lab) != -1)
        np.add.at(pseudo, (jj, y_lab[rr], L_lab[rr, jj]), 1.0)  # gold votes count as seen
        lab_classes = np.bincount(y_lab, minlength=k).astype(np.float64)
    lab_total = float(lab_classes.sum())
    active = unit_counts.sum(axis=1) > 0
    all_active = bool(active.all())
    pool_weight = pooling * prior_strength
    pi_add, pi_den = class_shrink * total / k, total * (1.0 + class_shrink) + lab_total

    # (Few numpy calls on these small arrays: at 10 LFs and 2 classes they cost as much
    # as the products.)
    def m_step(post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Ny, nu = prod.counts(post)
        pi = (Ny + lab_classes + pi_add) / pi_den
        N = nu.reshape(m, k, k).transpose(0, 2, 1) + pseudo  # [j, y, v]
        if pooling > 0:
            # hierarchical prior: part of each row's pseudo-votes follow the pooled
            # confusion of all LFs (which classes get mixed up, e.g. neighbouring grades)
            pooled = (N if all_active else N[active]).sum(axis=0)  # LFs that never vote do not shape the pool
            pooled /= pooled.sum(axis=1, keepdims=True)
            pooled -= prior
            pooled *= pool_weight
            N += pooled
        N /= N.sum(axis=2, keepdims=True)
        np.maximum(N, 1e-300, out=N)
        np.maximum(pi, 1e-300, out=pi)
        return np.log(N, out=N), np.log(pi, out=pi)

    def em(theta: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return m_step(prod.e_step(*theta))

    # EM starts from majority vote
    theta, it, converged = _squarem(em, m_step(prod.start()), max_iter, tol, active)
    log_conf, log_pi = theta
    return {
        "log_conf": log_conf,
        "log_prior": log_pi,
        "posterior": prod.posterior(prod.e_step(log_conf, log_pi)) if posterior else None,
        "n_iter": it,
        "converged": converged,
        "unit_counts": unit_counts,
    }


def _squarem(em: Any, theta: tuple[np.ndarray, np.ndarray], max_iter: int, tol: float,
             active: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], int, bool]:
    """Iterate the EM map ``em`` over ``(log C, log pi)`` to its fixed point, accelerated by
    SQUAREM (Varadhan and Roland, 2008), as the precision model's EM is.

    The extrapolation runs in log space and is renormalized (rows of ``C`` and ``pi`` stay
    distributions); an extrapolated point whose EM step moves more than ten times the
    plain step before it is dropped. Stops when one EM step moves no probability by more
    than ``tol``; ``it`` counts EM steps (at most ``max_iter``). Only the LFs that vote
    (``active``) enter the extrapolation and the test: the others' tables follow the
    pooled prior and change no posterior, so adding a silent LF changes nothing.
    """
    every = bool(active.all())

    def moved(a: tuple, b: tuple) -> float:
        a0, b0 = (a[0], b[0]) if every else (a[0][active], b[0][active])
        d = np.exp(a0)
        d -= np.exp(b0)
        e = np.exp(a[1])
        e -= np.exp(b[1])
        return max(float(np.abs(d, out=d).max(initial=0.0)), float(np.abs(e, out=e).max()))

    def pack(t: tuple) -> np.ndarray:
        return np.concatenate([(t[0] if every else t[0][active]).ravel(), t[1]])

    def unpack(x: np.ndarray, like: tuple) -> tuple[np.ndarray, np.ndarray]:
        lc = like[0].copy()
        n_conf = int(active.sum()) * lc.shape[1] * lc.shape[2]
        part = x[:n_conf].reshape(-1, lc.shape[1], lc.shape[2])
        lc[active] = part - _logsumexp(part, axis=2)
        lp = x[n_conf:]
        return lc, lp - _logsumexp(lp, axis=0)

    return squarem(em, theta, moved=moved, pack=pack, unpack=unpack, tol=tol, limit=max_iter)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """``log(sum(exp(x), axis))``, kept as an axis of length 1 (scipy's costs 10x more on
    these small arrays)."""
    mx = x.max(axis=axis, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    return mx + np.log(np.exp(x - mx).sum(axis=axis, keepdims=True))


def fit_confusion_params(stats: SufficientStats, cfg: Any, class_balance: np.ndarray | None,
                         labeled: tuple[np.ndarray, np.ndarray] | None = None) -> FittedParams:
    """Fit :func:`confusion_em` on the pattern table of ``stats`` -> :class:`FittedParams`.

    The parameters are a ``"table"`` model whose abstain row is the same for every class
    (abstaining adds nothing to any class). A given ``class_balance`` replaces the
    estimated prior.
    """
    if not confusion_fits(stats):
        raise ValueError(
            f"the confusion model needs {stats.n_lfs} x {stats.cardinality} x {stats.cardinality} "
            f"tables and the vote-pattern table; too large here: use method='dawid_skene'"
        )
    prod = pattern_products(stats.patterns, stats.counts, stats.cardinality)
    r = confusion_em(prod, prior_strength=cfg.confusion_prior_strength, prior_accuracy=cfg.confusion_prior_accuracy,
                     class_shrink=cfg.confusion_class_shrink, max_iter=cfg.max_iter, tol=cfg.tol,
                     pooling=cfg.confusion_prior_pooling,
                     labeled=labeled, posterior=False)
    m, k = stats.n_lfs, stats.cardinality
    # A proper P(L_j = v | y) table with abstaining uninformative: LF j votes at its overall
    # rate whatever the class, and then says v with probability C[j, y, v]. (Rows sum to 1,
    # so ``confusion_`` reads as usual; the abstain row, constant across classes, cancels.)
    rate = np.clip(r["unit_counts"].sum(axis=1) / prod.total, 1e-12, 1.0 - 1e-9)
    log_table = np.empty((m, k + 1, k))
    log_table[:, 0, :] = np.log1p(-rate)[:, None]
    log_table[:, 1:, :] = r["log_conf"].transpose(0, 2, 1) + np.log(rate)[:, None, None]  # [j, v + 1, y]
    est = r["log_prior"]
    info: dict[str, Any] = {"parameterization": "confusion", "n_iter": r["n_iter"], "converged": r["converged"],
                            "n_patterns": int(prod.p), "estimated_class_balance": np.exp(est).tolist()}
    log_prior = est if class_balance is None else np.log(np.asarray(class_balance, dtype=np.float64))
    # precision P(y = v | L_j = v) under the fitted balance
    joint = np.exp(r["log_conf"]) * np.exp(est)[None, :, None]  # [j, y, v]
    idx = np.arange(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = joint[:, idx, idx] / joint.sum(axis=1)
    cnt = r["unit_counts"]
    prec = np.where(cnt > 0, prec, np.nan)
    return FittedParams(kind="table", log_prior=log_prior, precision=prec, vote_rate=cnt / prod.total,
                        log_table=log_table, train_log_prior=est, info=info)
