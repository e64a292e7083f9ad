"""Dawid-Skene-style EM over distinct vote patterns.

EM over the table of distinct rows of ``L`` with their counts gives exactly the result of
EM over every row (each row's posterior depends only on its votes), at a cost that grows
with the number of distinct patterns, not rows.

Two parameterizations:

``"precision"`` (default)
    For each LF ``j`` and class ``v`` it votes, the precision
    ``a[j, v] = P(y = v | LF j votes v)``; when the vote is wrong, the true class follows
    the class balance. Abstaining is treated as uninformative. The posterior is a
    weighted vote::

        log P(y | votes) = log pi[y] + sum over votes (j, v == y) of (logit a[j, v] - logit pi[v]) + const

    so a vote counts by how much its precision exceeds the base rate of its class: an LF
    no better than the base rate gets weight 0, one worse gets a negative weight. It has
    one parameter per (LF, voted class), which suits unipolar LFs (that vote one class)
    and thousands of classes. Three choices keep EM away from the degenerate solutions of
    this unsupervised problem (all validated on synthetic data, see
    :mod:`labelmodel.validation`):

    * each precision has a Beta prior worth ``prior_strength * n_rows`` votes, centered on
      ``prior_precision``, raised for frequent classes so that a vote always beats its
      class's base rate by at least the log-odds it has at uniform balance
      (:func:`prior_precision_of`). Agreement between LFs is not gold: its bias does not
      shrink with more rows, so neither does the prior;
    * the LFs voting a class are, together, evidence for it: the vote-weighted mean weight
      of each class's votes is kept at or above ``class_evidence_floor`` times the prior's
      (otherwise EM can decide that every LF of a class is wrong);
    * every LF is better than chance (``better_than_chance``, Snorkel's assumption): a vote
      alone on a row makes its class the most probable one (:func:`chance_floor`). Abstaining
      is uninformative here, so the rows on which an LF votes alone say nothing about its
      precision; EM estimates it from the rows it shares with other LFs and applies that
      to its lone rows. For a broad LF of one class whose shared rows are mostly the other
      class's (a "short comment is ham" rule against precise spam keywords) that estimate
      falls below chance and every lone row went to the other class (issue 8: the people
      loop on YouTube, 79.9% against majority vote's 85.6%);
    * the class balance EM estimates is shrunk toward uniform for the rows no LF votes on
      (``class_balance_trust``); a given ``class_balance`` (or ``Y_dev`` without ``L_dev``)
      replaces it for scoring. ``em_class_balance="uniform"`` holds it at uniform inside EM
      instead (Snorkel's default; measured worse on most synthetic scenarios, see
      ``labelmodel/README.md``).

``"full"``
    Classic Dawid-Skene: a full ``P(L_j = v | y)`` table per LF over ``v in {abstain,
    0..k-1}``, Dirichlet-smoothed toward the LF's overall vote distribution. Abstaining
    is informative. ``m * (k+1) * k`` parameters: for small ``k`` and many rows.

Both start from majority vote and are deterministic. The precision EM is accelerated by
SQUAREM (same fixed point, about half the EM steps) and its E-step is two sparse
products between (LF, class) units and (pattern, class) cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logit, logsumexp

from ._base import BaseLabelModel
from ._params import FittedParams
from .abstain import abstain_table
from ._squarem import squarem
from ._prep import expand_params, merge_duplicates
from ._votes import BumpPosterior, VoteTable
from .stats import SufficientStats

__all__ = ["DawidSkene", "precision_em", "full_em"]

_EPS = 1e-6
# Log-odds by which a lone vote's class beats the runner-up at the better-than-chance
# boundary: any margin > 0 keeps the boundary clear of a tie (the 1e-5 tie tolerance of
# ``model.tie_shares``); hard labels were the same for every margin from 1e-3 to 0.5 on
# the people-loop statistics, so it is a tie-breaker, not a tuned strength.
CHANCE_MARGIN = 1e-3
_MAX_FULL_CELLS = 20_000_000


def prior_precision_of(pi: np.ndarray, prior_precision: float) -> np.ndarray:
    """Prior precision of a vote for each class.

    ``prior_precision`` itself, or, for a class so frequent that this would not beat its
    base rate by the same log-odds as at uniform balance, ``expit(logit(pi) + lift)`` with
    ``lift = logit(prior_precision) - logit(1/k)``. The floor at ``prior_precision`` keeps
    the prior from following a rare class's estimated balance down (which let EM talk
    itself into "this class hardly exists, so its votes are wrong").
    """
    k = len(pi)
    lift = logit(prior_precision) - logit(1.0 / k)
    lifted = expit(logit(np.clip(pi, _EPS, 1 - _EPS)) + lift)
    return np.maximum(lifted, prior_precision)


def chance_floor(log_pi: np.ndarray, cls: np.ndarray, margin: float = CHANCE_MARGIN) -> np.ndarray:
    """Smallest weight of a vote for class ``cls`` that is better than chance.

    A vote's weight ``w`` (``logit(precision) - logit(pi[v])``) is added to its class's log
    prior, so alone on a row it makes its class the most probable when
    ``log pi[v] + w > max over c != v of log pi[c]``. Returns that bound plus ``margin``
    for each entry of ``cls``. For two classes it is ``precision > 1/2`` (Snorkel's "better
    than random"); for a rare class it asks more than beating the base rate.
    """
    k = len(log_pi)
    if k < 2:
        return np.full(len(cls), -np.inf)
    top2 = np.argsort(log_pi)[-2:]  # [runner-up, top]
    other = np.where(cls == top2[1], log_pi[top2[0]], log_pi[top2[1]])
    return other - log_pi[cls] + margin


def _mv_cells(vt: VoteTable, bp: BumpPosterior) -> tuple[np.ndarray, np.ndarray]:
    """Majority-vote posteriors (votes split proportionally): per cell of ``bp``, the
    posterior of its class; per class, the weighted total over rows."""
    k = vt.k
    cell_votes = np.bincount(bp.inv, minlength=len(bp.cell_row)).astype(np.float64)
    if bp.dense:  # cells are [k, rows]
        per_row = cell_votes.reshape(k, vt.n_rows)
        row_votes = per_row.sum(axis=0)
        cell_post = (per_row / np.maximum(row_votes, 1.0)).reshape(-1)
        N = cell_post.reshape(k, vt.n_rows) @ vt.row_weight
        return cell_post, N + vt.row_weight[row_votes == 0].sum() / k
    row_votes = np.bincount(vt.row, minlength=vt.n_rows).astype(np.float64)
    cell_post = cell_votes / np.maximum(row_votes[bp.cell_row], 1.0)
    w = vt.row_weight
    N = np.bincount(bp.cell_cls, weights=w[bp.cell_row] * cell_post, minlength=k)
    N = N + w[row_votes == 0].sum() / k
    return cell_post, N


def _mv_init(vt: VoteTable, bp: BumpPosterior) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts under majority-vote posteriors (votes split proportionally).

    Returns ``(A, N)``: per vote, the weighted posterior of its class; per class, the total.
    """
    cell_post, N = _mv_cells(vt, bp)
    return vt.weight_of_votes() * cell_post[bp.inv], N


def _squarem(em: Any, moved: Any, theta: tuple, it: int, limit: int, tol: float) -> tuple[tuple, int, bool]:
    """Iterate the EM map ``em`` to its fixed point, accelerated by SQUAREM (Varadhan and
    Roland, 2008: a squared extrapolation of two EM steps, then one EM step to stabilize).

    The extrapolation (:func:`labelmodel._squarem.squarem`) runs in logit/log space so
    precisions stay in (0, 1) and the class balance on the simplex. ``it`` counts EM steps.
    """

    def pack(t: tuple) -> np.ndarray:
        return np.concatenate([logit(t[0]), np.log(t[1])])

    def unpack(x: np.ndarray, like: tuple) -> tuple[np.ndarray, np.ndarray]:
        n_a = len(like[0])
        lp = x[n_a:]
        pi = np.exp(lp - lp.max())
        return np.clip(expit(x[:n_a]), _EPS, 1 - _EPS), pi / pi.sum()

    return squarem(em, theta, moved=moved, pack=pack, unpack=unpack, tol=tol, limit=limit, it=it)


def precision_em(
    vt: VoteTable,
    *,
    prior_strength: float,
    prior_precision: float,
    class_smoothing: float,
    max_iter: int,
    tol: float,
    n_steps: int | None = None,
    class_evidence_floor: float = 0.5,
    labeled: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    better_than_chance: bool = True,
    fixed_balance: np.ndarray | None = None,
) -> dict[str, Any]:
    """EM for the precision parameterization over a (weighted) vote table.

    Parameters
    ----------
    vt : VoteTable
        Votes of rows or of distinct patterns (``row_weight`` = counts).
    prior_strength : float
        Pseudo-votes of the Beta prior on each precision.
    prior_precision : float
        Prior precision at uniform class balance (see :func:`prior_precision_of`).
    n_steps : int, optional
        Stop after this many M-steps of plain EM (1 gives the weighted majority vote).
        Without it, EM runs to its fixed point accelerated by SQUAREM (:func:`_squarem`).
    class_evidence_floor : float
        Identifiability constraint: the vote-weighted mean weight of the votes for each
        class is kept at or above this fraction of the prior's weight.
    labeled : (correct [m*k], votes [m*k], class counts [k]), optional
        Rows with gold labels (dev labels; :func:`labeled_counts`): per (LF, voted class),
        how many of its votes on them were right and how many it cast, and the gold class
        counts. They enter every M-step as known posteriors (semi-supervised EM).
    better_than_chance : bool
        Keep every vote's weight at or above :func:`chance_floor` under the current class
        balance (a projection in every M-step, like ``class_evidence_floor``).
    fixed_balance : [k], optional
        Hold the class balance at this value instead of estimating it (Snorkel holds it at
        the given balance, else uniform).

    Returns
    -------
    dict with ``precision`` [m, k], ``log_prior`` [k], ``weights`` [m, k], ``n_iter``,
    ``converged``, ``unit_counts`` [m, k], ``at_chance`` [m, k] (bool: held at the
    better-than-chance bound), ``posterior_balance`` [k] or None (when the balance is held:
    the class shares of the final posteriors, smoothed like the estimate, rows without a
    vote at the held balance). (LF, class) pairs that never voted get the prior.
    """
    k, m = vt.k, vt.n_lfs
    total = vt.total
    bp = BumpPosterior(vt)
    # Only (LF, class) pairs that voted ("units") carry parameters: O(votes), not O(m*k).
    key = np.multiply(vt.lf, k)
    key += vt.cls
    if m * k <= 10_000_000:
        present = np.bincount(key, minlength=m * k) > 0
        units = np.flatnonzero(present)
        slot = np.cumsum(present) - 1
        unit_of_vote = np.take(slot, key, out=key)
    else:
        units, unit_of_vote = np.unique(key, return_inverse=True)
        unit_of_vote = unit_of_vote.reshape(-1)
    ucls = units % k
    U = len(units)
    vote_w = vt.weight_of_votes()
    ucnt = np.bincount(unit_of_vote, weights=vote_w, minlength=U)
    # votes as sparse maps between units and (row, class) cells: an E-step is two sparse
    # products, each cell's summed vote weight and each unit's weighted posterior mass
    n_cells = len(bp.cell_row)
    to_units = sp.csr_array((vote_w, (unit_of_vote, bp.inv)), shape=(U, n_cells))
    to_units.sum_duplicates()  # no-op: an LF votes once per row, so once per cell
    to_cells = sp.csc_array((np.ones(len(to_units.data)), to_units.indices, to_units.indptr), shape=(n_cells, U))
    cell_post, N = _mv_cells(vt, bp)
    A = to_units @ cell_post
    s = float(prior_strength)
    lift = logit(prior_precision) - logit(1.0 / k)
    floor = class_evidence_floor * lift
    class_tot = np.bincount(ucls, weights=ucnt, minlength=k)
    if labeled is not None:
        lab_right, lab_votes, lab_classes = (np.asarray(a, dtype=np.float64) for a in labeled)
        lab_right, lab_votes = lab_right[units], lab_votes[units]
    else:
        lab_right, lab_votes, lab_classes = np.zeros(U), np.zeros(U), np.zeros(k)
    lab_total = float(lab_classes.sum())

    # constants of the M-step (it runs once per EM step, on small arrays)
    denom = ucnt + lab_votes + s
    has_denom = denom > 0
    safe_denom = np.where(has_denom, denom, 1.0)
    has_class = class_tot > 0
    safe_class_tot = np.where(has_class, class_tot, 1.0)

    held_pi = None if fixed_balance is None else np.asarray(fixed_balance, dtype=np.float64)

    def balance(N: np.ndarray) -> np.ndarray:
        pi = (N + lab_classes + class_smoothing) / (total + lab_total + k * class_smoothing)
        pi = np.clip(pi, 1e-12, None)
        return pi / pi.sum()

    def m_step(A: np.ndarray, N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pi = balance(N) if held_pi is None else held_pi
        lpi_u = logit(pi)[ucls]
        a0 = prior_precision_of(pi, prior_precision)[ucls]
        a = np.where(has_denom, (A + lab_right + s * a0) / safe_denom, a0)
        w = logit(np.clip(a, _EPS, 1 - _EPS)) - lpi_u
        # projection onto "each class's votes are, on average, evidence for it"
        mean_w = np.bincount(ucls, weights=ucnt * w, minlength=k) / safe_class_tot
        shift = np.where(has_class, np.maximum(0.0, floor - mean_w), 0.0)
        w += shift[ucls]
        if better_than_chance:
            np.maximum(w, chance_floor(np.log(pi), ucls), out=w)
        w += lpi_u
        return np.clip(expit(w), _EPS, 1 - _EPS), pi

    def e_step(a: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_pi = np.log(pi)
        w = logit(a) - logit(pi)[ucls]
        cell_post, log_z = bp.compute_cells(log_pi, to_cells @ w)
        return to_units @ cell_post, bp.class_totals(log_pi, cell_post, log_z)

    def em(theta: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return m_step(*e_step(*theta))

    def moved(t1: tuple[np.ndarray, np.ndarray], t0: tuple[np.ndarray, np.ndarray]) -> float:
        return max(np.abs(t1[0] - t0[0]).max(initial=0.0), np.abs(t1[1] - t0[1]).max())

    theta = m_step(A, N)
    converged = False
    it = 1
    limit = max_iter if n_steps is None else n_steps
    if n_steps is not None:
        # plain EM for a fixed number of steps (1 = weighted majority vote)
        while it < limit:
            nxt = em(theta)
            it += 1
            done = moved(nxt, theta) < tol
            theta = nxt
            if done:
                converged = True
                break
    else:
        theta, it, converged = _squarem(em, moved, theta, it, limit, tol)
    a, pi = theta
    posterior_balance = None if held_pi is None else balance(e_step(a, pi)[1])
    lpi = logit(pi)
    a0_all = prior_precision_of(pi, prior_precision)
    prec = np.broadcast_to(a0_all, (m, k)).copy().reshape(-1)
    prec[units] = a
    prec = prec.reshape(m, k)
    cnt = np.zeros(m * k)
    cnt[units] = ucnt
    held = np.zeros(m * k, dtype=bool)
    if better_than_chance:
        # at the bound: within float noise of it (the projection puts them exactly there)
        w_units = logit(a) - lpi[ucls]
        held[units] = w_units <= chance_floor(np.log(pi), ucls) + 1e-6
    return {
        "precision": prec,
        "log_prior": np.log(pi),
        "weights": logit(prec) - lpi[None, :],
        "n_iter": it,
        "converged": converged,
        "unit_counts": cnt.reshape(m, k),
        "at_chance": held.reshape(m, k),
        "posterior_balance": posterior_balance,
    }


def full_em(
    vt: VoteTable,
    *,
    class_smoothing: float,
    max_iter: int,
    tol: float,
) -> dict[str, Any]:
    """Classic Dawid-Skene EM with a full ``P(L_j = v | y)`` table per LF (abstain included)."""
    k, m, p = vt.k, vt.n_lfs, vt.n_rows
    if m * (k + 1) * k > _MAX_FULL_CELLS or p * k > 4 * _MAX_FULL_CELLS:
        raise ValueError(
            f"parameterization='full' needs {m} x {k + 1} x {k} tables over {p} patterns, too "
            "many; use parameterization='precision'"
        )
    w = vt.row_weight
    total = vt.total
    cnt = vt.unit_counts()
    # Dirichlet prior centered on each LF's overall vote distribution, k+1 pseudo-rows
    marg = np.concatenate([(total - cnt.sum(axis=1))[:, None], cnt], axis=1) / total
    prior = (k + 1) * np.clip(marg, 1e-9, None)  # [m, k+1]
    # init: majority-vote posteriors
    post = np.zeros((p, k))
    np.add.at(post, (vt.row, vt.cls), 1.0)
    rs = post.sum(axis=1, keepdims=True)
    post = np.where(rs > 0, post / np.where(rs > 0, rs, 1.0), 1.0 / k)
    prev = None
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        Ny = w @ post
        pi = (Ny + class_smoothing) / (total + k * class_smoothing)
        Nt = np.zeros((m, k + 1, k))
        np.add.at(Nt, (vt.lf, vt.cls + 1), w[vt.row, None] * post[vt.row])
        Nt[:, 0, :] = Ny[None, :] - Nt[:, 1:, :].sum(axis=1)
        T = Nt + prior[:, :, None]
        T = np.clip(T, 1e-12, None)
        T /= T.sum(axis=1, keepdims=True)
        lT = np.log(T)
        if prev is not None and max(np.abs(T - prev[0]).max(), np.abs(pi - prev[1]).max()) < tol:
            converged = True
            break
        prev = (T, pi)
        S = np.broadcast_to(np.log(pi) + lT[:, 0, :].sum(axis=0), (p, k)).copy()
        np.add.at(S, vt.row, lT[vt.lf, vt.cls + 1] - lT[vt.lf, 0])
        S -= logsumexp(S, axis=1, keepdims=True)
        post = np.exp(S)
    # precision P(y = v | L_j = v) from the table
    joint = T[:, 1:, :] * pi[None, None, :]  # [m, v, y]
    marg_v = joint.sum(axis=2)
    idx = np.arange(k)
    prec = np.where(cnt > 0, joint[:, idx, idx] / np.clip(marg_v, 1e-300, None), np.nan)
    return {
        "precision": prec,
        "log_prior": np.log(pi),
        "log_table": lT,
        "n_iter": it,
        "converged": converged,
        "unit_counts": cnt,
    }


class DawidSkene(BaseLabelModel):
    """Dawid-Skene-style EM over vote patterns (see the module docstring).

    Parameters
    ----------
    cardinality : int
    parameterization : {"precision", "full"}
    **kwargs
        Other :class:`~labelmodel.config.LabelModelConfig` fields.
    """

    _method = "dawid_skene"

    def __init__(self, cardinality: int = 2, **kwargs: Any):
        kwargs.setdefault("method", "dawid_skene")
        super().__init__(cardinality, **kwargs)

    def fit(self, L_train: Any, Y_dev: Any = None, class_balance: Any = None, progress_bar: bool = False,
            *, L_dev: Any = None, lf_names: Any = None, aggregate: bool = True, **kwargs: Any) -> DawidSkene:
        """As :meth:`BaseLabelModel.fit`; ``aggregate=False`` runs EM over every row instead
        of over distinct patterns (same result, slower; for checking)."""
        if aggregate:
            return super().fit(L_train, Y_dev, class_balance, progress_bar, L_dev=L_dev, lf_names=lf_names, **kwargs)
        self._consume_train_kwargs(kwargs)
        L = self._check_L(L_train, "L_train", fitted=False)
        from .stats import stats_from_matrix

        stats = stats_from_matrix(L, self.cardinality, lf_names)
        # replace the pattern table by the rows themselves (count 1 each)
        import dataclasses

        stats = dataclasses.replace(stats, patterns=L.astype(np.int16), counts=np.ones(len(L), dtype=np.int64))
        self._no_merge = True
        try:
            return self.fit_from_stats(stats, Y_dev=Y_dev, L_dev=L_dev, class_balance=class_balance)
        finally:
            self._no_merge = False

    def _fit_stats(self, stats: SufficientStats, class_balance: np.ndarray | None, dev: tuple | None) -> FittedParams:
        if stats.patterns is None:
            raise ValueError(
                "DawidSkene needs the vote-pattern table, but these statistics have none (more "
                "distinct patterns than max_patterns); use MomentEstimator or LabelModel(method='auto')"
            )
        merge = self.config.merge_duplicates and not getattr(self, "_no_merge", False)
        if merge:
            red, rep, keep = merge_duplicates(stats)
        else:
            red, rep, keep = stats, np.arange(stats.n_lfs), np.arange(stats.n_lfs)
        p = fit_pattern_params(red, self.config, class_balance)
        return expand_params(p, rep, keep, stats.lf_names) if len(keep) < stats.n_lfs else p


def labeled_counts(L: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of labeled rows for :func:`precision_em`: per (LF, voted class) unit
    ``j * k + v``, its right votes and its votes; and the gold class counts."""
    L = np.asarray(L)
    m = L.shape[1]
    rows, lfs = np.nonzero(L != -1)
    unit = lfs * k + L[rows, lfs]
    right = np.bincount(unit, weights=(L[rows, lfs] == y[rows]).astype(np.float64), minlength=m * k)
    votes = np.bincount(unit, minlength=m * k).astype(np.float64)
    return right, votes, np.bincount(y, minlength=k).astype(np.float64)


def fit_pattern_params(stats: SufficientStats, cfg: Any, class_balance: np.ndarray | None,
                       parameterization: str | None = None, n_steps: int | None = None,
                       labeled: tuple[np.ndarray, np.ndarray] | None = None) -> FittedParams:
    """EM over the pattern table of ``stats`` -> :class:`FittedParams`."""
    vt = VoteTable.from_stats(stats)
    param = parameterization or cfg.parameterization
    if param == "full":
        vote_rate = vt.unit_counts() / vt.total
        r = full_em(vt, class_smoothing=cfg.class_smoothing, max_iter=cfg.max_iter, tol=cfg.tol)
        p = FittedParams(kind="table", log_prior=r["log_prior"], precision=r["precision"],
                            vote_rate=vote_rate, log_table=r["log_table"],
                            info={"parameterization": "full", "n_iter": r["n_iter"], "converged": r["converged"]})
        p.log_prior = prediction_prior(p.log_prior, class_balance, cfg.class_balance_trust, p.info)
        return p
    r = precision_em(vt, prior_strength=cfg.prior_strength * stats.n_rows, prior_precision=cfg.prior_precision,
                     class_smoothing=cfg.class_smoothing, max_iter=cfg.max_iter, tol=cfg.tol,
                     n_steps=n_steps, class_evidence_floor=cfg.class_evidence_floor,
                     labeled=None if labeled is None else labeled_counts(*labeled, stats.cardinality),
                     better_than_chance=cfg.better_than_chance,
                     fixed_balance=em_balance(cfg, class_balance, stats.cardinality))
    vote_rate = r["unit_counts"] / vt.total
    info = {"parameterization": "precision", "n_iter": r["n_iter"], "converged": r["converged"],
            "n_patterns": int(stats.patterns.shape[0]),
            "held_at_chance": held_at_chance(r["at_chance"], stats.lf_names), **em_balance_info(cfg, class_balance)}
    return bump_params(r, r["unit_counts"], vote_rate, class_balance, info, cfg.class_balance_trust,
                       cfg.abstain_evidence, stats.n_covered / stats.n_rows, cfg.better_than_chance, stats.lf_names)


def em_balance(cfg: Any, class_balance: np.ndarray | None, k: int) -> np.ndarray | None:
    """The class balance the precision EM holds fixed, or ``None`` to estimate it (default).

    With no known balance, ``em_class_balance="uniform"`` holds it at uniform (Snorkel's
    default). A known balance (``class_balance``, or ``Y_dev``'s without ``L_dev``) scores
    the rows and EM estimates its own, whatever the setting: held at the known balance, EM
    measured worse (session 16, ``benchmarks/bench_abstain.py``). ``abstain_evidence`` builds
    its table from EM's balance of the covered rows, so it estimates it too."""
    if cfg.em_class_balance == "estimate" or class_balance is not None or cfg.abstain_evidence:
        return None
    return np.full(k, 1.0 / k)


def em_balance_info(cfg: Any, class_balance: np.ndarray | None) -> dict[str, str]:
    """``fit_info_["em_class_balance"]`` when ``em_class_balance="uniform"`` is set: ``"uniform"``
    when EM held it, else why it went unused. Nothing with the default, so a default fit's
    ``fit_info_`` (and the model saved with it) does not change."""
    if cfg.em_class_balance == "estimate":
        return {}
    if class_balance is not None:
        return {"em_class_balance": "unused: a class balance is known (class_balance or Y_dev); it scores the rows"}
    if cfg.abstain_evidence:
        return {"em_class_balance": "unused: abstain_evidence estimates the balance of the covered rows"}
    return {"em_class_balance": "uniform"}


def held_at_chance(at_chance: np.ndarray, lf_names: Any) -> list[str]:
    """``"<lf>:<class>"`` for each vote held at the better-than-chance bound: EM, left
    alone, would have called it no better than chance (its shared rows mostly disagree)."""
    names = list(lf_names) if lf_names is not None else []
    out = []
    for j, c in zip(*np.nonzero(at_chance)):
        out.append(f"{names[j] if j < len(names) else j}:{int(c)}")
    return out


def prediction_prior(log_prior: np.ndarray, class_balance: np.ndarray | None, trust: float,
                     info: dict[str, Any]) -> np.ndarray:
    """The log class prior used to predict.

    A known class balance replaces the estimate. Otherwise the estimate is shrunk toward
    uniform in log space, ``pi ** trust`` (renormalized): EM's class balance inherits the
    errors of the LF estimates (over-trusted LFs inflate the classes they vote), and it is
    identified from the covered rows only. The default trust is 0 (uniform), chosen
    leave-one-task-out over the real tasks and synthetic shapes (issue 8). Every vote keeps
    its likelihood ratio (weight) either way.
    """
    info["estimated_class_balance"] = np.exp(log_prior).tolist()
    if class_balance is not None:
        return np.log(np.asarray(class_balance, dtype=np.float64))
    lp = trust * log_prior
    return lp - logsumexp(lp)


def bump_params(r: dict[str, Any], cnt: np.ndarray, vote_rate: np.ndarray,
                class_balance: np.ndarray | None, info: dict[str, Any], trust: float = 1.0,
                abstain_evidence: bool = False, coverage: float = 1.0,
                better_than_chance: bool = False, lf_names: Any = None) -> FittedParams:
    """:class:`FittedParams` of a precision-EM result (see :func:`prediction_prior`);
    with ``abstain_evidence``, the full table it implies (:func:`abstain_table`;
    ``coverage``: the share of training rows with at least one vote).

    A known ``class_balance`` scores the rows instead of EM's estimate, against which EM
    held each vote better than chance; with ``better_than_chance`` the bound is applied again
    against the known balance, so a vote alone on a row still makes its class the most
    probable (a Snorkel user's ``class_balance=[0.5, 0.5]`` otherwise sent the lone votes of
    LFs EM found less precise than its own estimate of their class's share to the other class).
    """
    W = r["weights"]
    log_prior = prediction_prior(r["log_prior"], class_balance, trust, info)
    if class_balance is not None and better_than_chance:
        m, k = W.shape
        cls = np.broadcast_to(np.arange(k), (m, k))
        floor = chance_floor(log_prior, cls.reshape(-1)).reshape(m, k)
        raised = (cnt > 0) & (W < floor)
        if raised.any():
            W = np.where(raised, floor, W)
            info["held_at_chance"] = held_at_chance(np.asarray(r["at_chance"]) | raised, lf_names)
    if r.get("posterior_balance") is not None:  # held fixed in EM: report what the posteriors imply
        info["estimated_class_balance"] = np.asarray(r["posterior_balance"]).tolist()
    # precision P(y = v | vote v) under the training distribution: the given class
    # balance if any, else EM's estimate (not the shrunk prediction prior)
    ref = log_prior if class_balance is not None else r["log_prior"]
    prec = expit(W + logit(np.exp(ref))[None, :])
    prec = np.where(cnt > 0, prec, np.nan)
    p = FittedParams(kind="bump", log_prior=log_prior, precision=prec, vote_rate=vote_rate,
                     weights=W, train_log_prior=ref, info=info)
    return abstain_table(p, coverage, class_balance is not None) if abstain_evidence else p
