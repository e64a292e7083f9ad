"""Preparing statistics for the estimators: duplicate LFs, sub-selections, expansion back."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._params import FittedParams
from ._votes import duplicate_groups
from .stats import SufficientStats


def select_lfs(stats: SufficientStats, keep: np.ndarray) -> SufficientStats:
    """Statistics of the LF columns ``keep`` only (patterns re-aggregated)."""
    k = stats.cardinality
    keep = np.asarray(keep, dtype=np.int64)
    cols = (keep[:, None] * k + np.arange(k)[None, :]).reshape(-1)
    if not stats.overlap_computed and stats.patterns is not None:
        sub = None  # computed from the selected patterns on demand, as for the full set
    else:
        O = stats.overlap
        sub = sp.csr_array(O)[cols][:, cols] if sp.issparse(O) else np.asarray(O)[np.ix_(cols, cols)]
    patterns = counts = None
    lf_overlap = np.asarray(stats.lf_overlap)[keep]
    lf_conflict = np.asarray(stats.lf_conflict)[keep]
    n_overlapped, n_conflicted = stats.n_overlapped, stats.n_conflicted
    n_covered = stats.n_covered
    if stats.patterns is not None:
        P = np.ascontiguousarray(stats.patterns[:, keep])
        m = len(keep)
        if len(P) and m:
            raw = P.view(np.dtype((np.void, P.dtype.itemsize * m))).ravel()
            uv, inv = np.unique(raw, return_inverse=True)
            uniq = uv.view(P.dtype).reshape(-1, m)
            cnt = np.bincount(inv.reshape(-1), weights=stats.counts, minlength=len(uv)).astype(np.int64)
            order = np.lexsort(uniq.T[::-1])
            patterns, counts = uniq[order], cnt[order]
            # exact label-level counts from the re-aggregated patterns
            voted = patterns != -1
            nv = voted.sum(axis=1)
            big = np.where(voted, patterns, np.iinfo(np.int16).max).min(axis=1)
            small = np.where(voted, patterns, np.iinfo(np.int16).min).max(axis=1)
            conf = (nv >= 2) & (big != small)
            lf_overlap = (voted & (nv >= 2)[:, None]).T @ counts
            lf_conflict = (voted & conf[:, None]).T @ counts
            n_covered = int(counts[nv >= 1].sum())
            n_overlapped = int(counts[nv >= 2].sum())
            n_conflicted = int(counts[conf].sum())
        else:
            patterns, counts = P, stats.counts
    else:
        # Without patterns, lf_overlap of a kept LF still counts rows where only a dropped
        # LF voted with it; scale it by the share of its co-votes that involve kept LFs.
        m_all = stats.n_lfs
        dense = sp.csr_array(O) if sp.issparse(O) else sp.csr_array(np.asarray(O))
        block = sp.csr_array(
            (np.ones(m_all * k), (np.arange(m_all * k), np.repeat(np.arange(m_all), k))),
            shape=(m_all * k, m_all),
        )
        lf_pairs = (block.T @ dense @ block).toarray().astype(np.float64)  # [m, m]
        np.fill_diagonal(lf_pairs, 0.0)
        all_pairs = lf_pairs[keep].sum(axis=1)
        kept_pairs = lf_pairs[np.ix_(keep, keep)].sum(axis=1)
        share = np.where(all_pairs > 0, kept_pairs / np.where(all_pairs > 0, all_pairs, 1.0), 0.0)
        lf_overlap = np.rint(np.asarray(stats.lf_overlap)[keep] * share)
    return SufficientStats(
        n_rows=stats.n_rows,
        cardinality=k,
        lf_names=tuple(stats.lf_names[i] for i in keep),
        overlap=sub,
        lf_coverage=np.asarray(stats.lf_coverage)[keep],
        lf_overlap=np.asarray(lf_overlap, dtype=np.int64),
        lf_conflict=np.asarray(lf_conflict, dtype=np.int64),
        n_covered=n_covered,
        n_overlapped=n_overlapped,
        n_conflicted=n_conflicted,
        patterns=patterns,
        counts=counts,
    )


def merge_duplicates(stats: SufficientStats) -> tuple[SufficientStats, np.ndarray, np.ndarray]:
    """Drop LFs whose votes equal an earlier LF's on every row.

    Returns ``(reduced_stats, rep, keep)``: ``rep[j]`` is the representative of LF ``j``
    (itself when unique) and ``keep`` the representatives, in column order.
    """
    rep = duplicate_groups(stats)
    keep = np.flatnonzero(rep == np.arange(stats.n_lfs))
    if len(keep) == stats.n_lfs:
        return stats, rep, keep
    return select_lfs(stats, keep), rep, keep


def expand_params(p: FittedParams, rep: np.ndarray, keep: np.ndarray,
                  lf_names: tuple[str, ...] | None = None) -> FittedParams:
    """Parameters of the reduced LF set mapped back to all LFs; duplicates share the
    representative's estimates and split its vote weight, so a group counts once."""
    m = len(rep)
    pos = np.full(m, -1)
    pos[keep] = np.arange(len(keep))
    src = pos[rep]
    size = np.bincount(rep, minlength=m)[rep].astype(np.float64)
    weights = p.weights[src] / size[:, None] if p.weights is not None else None
    log_table = None
    if p.log_table is not None:
        # a duplicate's table is the representative's tempered by the group size
        lt = p.log_table[src] / size[:, None, None]
        if p.info.get("parameterization") != "confusion":
            log_table = lt - np.logaddexp.reduce(lt, axis=1, keepdims=True)
        else:  # abstaining must stay uninformative: temper the votes only, keep the abstain row
            log_table = lt
            log_table[:, 0, :] = p.log_table[src, 0, :]
    info = dict(p.info)
    groups = {}
    for j in range(m):
        if rep[j] != j:
            groups.setdefault(int(rep[j]), [int(rep[j])]).append(j)
    info["duplicate_groups"] = [
        [lf_names[j] for j in g] if lf_names is not None else g for g in groups.values()
    ]
    return FittedParams(
        kind=p.kind,
        log_prior=p.log_prior,
        precision=p.precision[src],
        vote_rate=p.vote_rate[src],
        weights=weights,
        log_table=log_table,
        train_log_prior=p.train_log_prior,
        info=info,
    )
