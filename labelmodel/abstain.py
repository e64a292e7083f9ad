"""Abstains as evidence for the precision model (``abstain_evidence``; issue 8, session 6).

The precision model treats abstaining as uninformative. Its fitted precisions, vote rates and
class balance still imply how often each LF abstains on each class; :func:`abstain_table`
turns a fitted precision model into the naive-Bayes table with those abstain rates, used at
prediction only (inside EM the abstain terms make it collapse on one-class LFs).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._params import _MAX_CONFUSION_CELLS, FittedParams

__all__ = ["abstain_table"]


def abstain_table(p: FittedParams, coverage: float, known_balance: bool = False) -> FittedParams:
    """The precision model with abstains as evidence: a ``"table"`` model.

    ``log_table[j, v + 1, y] = log P(L_j = v | y)`` and ``log_table[j, 0, y] = log P(LF j
    abstains | y)``, implied by the fitted precisions ``a``, vote rates ``beta`` and the
    training balance ``q``: LF ``j``'s votes for ``v`` fall on class ``v`` rows at the rate
    ``beta a`` and on class ``y != v`` rows at ``beta (1 - a) q_y / (1 - q_v)``, so a vote's
    log-odds between its class and another are the precision model's weights.

    EM's ``q`` is the balance of the *covered* rows (a row without votes has the prior as
    posterior, so it does not move ``q``). Dividing those vote rates by ``q`` would make a
    class the LFs cover well look rarely covered and send the unvoted rows to it. Under the
    model's conditional independence, class ``y``'s share of all rows ``x_y`` solves
    ``x_y (1 - prod_j (1 - e_jy / x_y)) = coverage * q_y`` (its covered share), with
    ``e_jy`` LF ``j``'s vote rate on class ``y`` rows: the LFs' overlaps on the class tell
    how much of it they miss. The left side grows with ``x_y`` (fewer overlaps per vote),
    from ``max_j e_jy`` to ``sum_j e_jy``; ``x_y`` is found by bisection, capped at the
    share the other classes' covered rows leave (``1 - coverage + coverage * q_y``).
    ``P(L_j = v | y) = (rate of v-votes on class y rows) / x_y`` and the class prior of
    every row is ``x`` normalized; unvoted rows get ``x_y prod_j P(abstain | y)``, which at
    the solution is ``x_y - coverage * q_y``, the class's estimated uncovered share. A known class balance
    (``class_balance``, ``Y_dev``) is ``x`` itself. EM is not refitted: abstains enter the
    prediction only (inside EM they make it collapse on one-class LFs).
    """
    m, k = p.n_lfs, p.k
    if m * (k + 1) * k > _MAX_CONFUSION_CELLS:
        raise ValueError(
            f"abstain_evidence=True needs a table of {m} LFs x {k + 1} x {k} = {m * (k + 1) * k:,} cells, "
            f"more than {_MAX_CONFUSION_CELLS:,}; set abstain_evidence to false"
        )
    q = np.exp(p.train_log_prior - logsumexp(p.train_log_prior))
    beta = p.vote_rate
    a = np.where(np.isnan(p.precision), 0.0, p.precision)
    # E[j, v, y]: share of all rows that are class y and get LF j's vote v
    wrong = beta * (1.0 - a) / np.clip(1.0 - q, 1e-12, None)[None, :]  # [m, v]
    E = wrong[:, :, None] * q[None, None, :]
    idx = np.arange(k)
    E[:, idx, idx] = beta * a
    e = E.sum(axis=1)  # [m, y]
    if known_balance:
        x = np.maximum(q, e.max(axis=0, initial=0.0))
    else:
        x = _class_shares(e, coverage * q, 1.0 - coverage + coverage * q)
    C = np.empty((m, k + 1, k))
    C[:, 1:, :] = E / x[None, None, :]
    C[:, 0, :] = 1.0 - e / x[None, :]
    C = np.clip(C, 1e-12, None)
    C /= C.sum(axis=1, keepdims=True)
    info = dict(p.info, abstain_evidence=True, population_class_balance=(x / x.sum()).tolist())
    log_prior = np.log(x / x.sum())
    return FittedParams(kind="table", log_prior=log_prior, precision=p.precision,
                        vote_rate=p.vote_rate, log_table=np.log(C), train_log_prior=log_prior,
                        info=info)


def _class_shares(e: np.ndarray, covered: np.ndarray, cap: np.ndarray, steps: int = 60) -> np.ndarray:
    """Per class ``y``, the ``x`` in ``[max_j e[j, y], cap[y]]`` with
    ``x (1 - prod_j (1 - e[j, y] / x)) = covered[y]`` (bisection; the left side grows with ``x``)."""
    lo = e.max(axis=0, initial=0.0) + 1e-15
    hi = np.maximum(cap, lo)

    def covered_share(x: np.ndarray) -> np.ndarray:
        return x * -np.expm1(np.log1p(-np.clip(e / x[None, :], 0.0, 1.0 - 1e-15)).sum(axis=0))

    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        below = covered_share(mid) < covered
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)
