"""SQUAREM acceleration of an EM map (Varadhan and Roland, 2008), shared by the EM estimators.

A squared extrapolation of two EM steps, then one EM step to stabilize. An extrapolated point
whose EM step moves more than ten times the plain step before it (or is not finite) is dropped
and the two plain EM steps are kept. The stopping test is plain EM's: one EM step moves no
parameter by more than ``tol``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def squarem(
    em: Callable[[Any], Any],
    theta: Any,
    *,
    moved: Callable[[Any, Any], float],
    pack: Callable[[Any], np.ndarray],
    unpack: Callable[[np.ndarray, Any], Any],
    tol: float,
    limit: int,
    it: int = 0,
) -> tuple[Any, int, bool]:
    """Iterate ``em`` from ``theta`` to its fixed point -> ``(theta, EM steps, converged)``.

    ``pack`` maps parameters to the unconstrained vector the extrapolation runs in and
    ``unpack(x, like)`` maps it back (``like``: parameters of the same shape); ``moved(a, b)`` is
    the largest parameter change between two iterates. ``it`` counts EM steps already taken;
    at most ``limit`` in all.
    """
    while it < limit:
        t1 = em(theta)
        it += 1
        d1 = moved(t1, theta)
        if d1 < tol or it >= limit:
            return t1, it, bool(d1 < tol)
        t2 = em(t1)
        it += 1
        d2 = moved(t2, t1)
        if d2 < tol or it >= limit:
            return t2, it, bool(d2 < tol)
        x0, x1, x2 = pack(theta), pack(t1), pack(t2)
        r = x1 - x0
        v = x2 - 2.0 * x1 + x0
        nv = float(np.sqrt(v @ v))
        if not nv > 0:
            theta = t2
            continue
        alpha = min(-float(np.sqrt(r @ r)) / nv, -1.0)
        x = x0 - 2.0 * alpha * r + alpha * alpha * v
        if not np.all(np.isfinite(x)):
            theta = t2
            continue
        t3 = unpack(x, t2)
        t4 = em(t3)
        it += 1
        d4 = moved(t4, t3)
        if not np.isfinite(d4) or d4 > 10.0 * d1:
            theta = t2  # the extrapolation did not help: keep the plain EM steps
            continue
        if d4 < tol:
            return t4, it, True
        theta = t4
    return theta, it, False
