"""LF summary tables (Snorkel's ``LFAnalysis.lf_summary``) from aggregated statistics.

Everything is computed from a :class:`labelmodel.stats.SufficientStats`, which Spark aggregates
from the votes table, so the summary never needs the label matrix on the driver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["lf_summary", "wilson_interval"]


def _per_lf(
    values: Mapping[str, Any] | Sequence[Any] | np.ndarray, names: Sequence[str], what: str, fill: Any
) -> list[Any]:
    """Values aligned to ``names`` from a name -> value mapping or a sequence in LF order."""
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{what} names unknown LF(s) {unknown}; the statistics hold {list(names)}")
        return [values.get(n, fill) for n in names]
    out = list(values)
    if len(out) != len(names):
        raise ValueError(f"{what} has {len(out)} entries for {len(names)} LFs; pass one per LF or a dict name -> value")
    return out


def lf_summary(
    stats: Any,
    lf_versions: Mapping[str, str] | None = None,
    gold_accuracy: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
    errors: Mapping[str, int] | Sequence[int] | np.ndarray | None = None,
    lf_info: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per LF: name, version, polarity, coverage, overlaps, conflicts[, emp_acc][, errors].

    Parameters
    ----------
    stats : labelmodel.stats.SufficientStats
        Aggregated vote statistics over ``n_rows`` rows.
    lf_versions : mapping of str to str, optional
        LF name -> version (e.g. ``LFRegistry.versions``); adds the ``version`` column.
    gold_accuracy : mapping or sequence of float, optional
        Empirical accuracy of each LF on labeled rows (name -> value or one per LF); adds ``emp_acc``
        (NaN for LFs not given).
    errors : mapping or sequence of int, optional
        Rows on which each LF raised; adds ``errors`` (0 for LFs not given).
    lf_info : mapping of str to mapping, optional
        LF name -> ``{"kind": ..., "origin": ...}`` (e.g. from the apply summary); adds the
        ``kind`` and ``origin`` columns ("" for LFs not given).

    Returns
    -------
    pandas.DataFrame
        ``polarity`` is the sorted list of class ids the LF voted at least once; ``coverage``,
        ``overlaps`` and ``conflicts`` are fractions of ``n_rows`` (NaN when there are no rows),
        as in Snorkel's ``LFAnalysis``.
    """
    if not hasattr(stats, "lf_names") or not hasattr(stats, "class_vote_counts"):
        raise TypeError(
            f"lf_summary takes the SufficientStats of a label matrix, not a {type(stats).__name__}: pass "
            f"stats_from_matrix(L, cardinality, lf_names) (from labelmodel), as for Snorkel's LFAnalysis(L, lfs)"
        )
    if lf_versions is not None and not isinstance(lf_versions, Mapping):
        raise TypeError(
            f"lf_versions must be a dict LF name -> version, not a {type(lf_versions).__name__}: pass "
            f"{{lf.name: lf.version for lf in lfs}} or LFRegistry.versions"
        )
    names = list(stats.lf_names)
    n = stats.n_rows
    votes = stats.class_vote_counts()
    polarity = [[int(c) for c in np.flatnonzero(row)] for row in votes]

    def frac(counts: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts, dtype=np.float64)
        return counts / n if n else np.full(len(counts), np.nan)

    data: dict[str, Any] = {"name": names}
    if lf_info is not None:
        data["kind"] = [lf_info.get(name, {}).get("kind", "") for name in names]
        data["origin"] = [lf_info.get(name, {}).get("origin", "") for name in names]
    if lf_versions is not None:
        missing = [name for name in names if name not in lf_versions]
        if missing:
            raise ValueError(f"lf_versions lacks LF(s) {missing}; pass the registry's versions")
        data["version"] = [lf_versions[name] for name in names]
    data["polarity"] = polarity
    data["coverage"] = frac(stats.lf_coverage)
    data["overlaps"] = frac(stats.lf_overlap)
    data["conflicts"] = frac(stats.lf_conflict)
    if gold_accuracy is not None:
        data["emp_acc"] = np.asarray(_per_lf(gold_accuracy, names, "gold_accuracy", np.nan), dtype=np.float64)
    if errors is not None:
        data["errors"] = np.asarray(_per_lf(errors, names, "errors", 0), dtype=np.int64)
    return pd.DataFrame(data)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); ``(nan, nan)`` without trials.

    Better than the normal approximation for small counts and proportions near 0 or 1, which is
    where LF accuracies on a few gold rows sit.
    """
    if trials <= 0:
        return float("nan"), float("nan")
    p = successes / trials
    denom = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes <= 0 else max(0.0, center - half)
    high = 1.0 if successes >= trials else min(1.0, center + half)
    return float(low), float(high)
