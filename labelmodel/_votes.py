"""Sparse vote tables and the log-space posterior shared by every estimator.

A *vote table* lists one entry per non-abstain vote: the row (or distinct pattern) it
belongs to, the LF, and the voted class, with a weight per row (1 for rows, the count for
patterns). Everything the estimators do costs O(number of votes + rows * k), never
O(rows * LFs * k), which keeps 1000 classes x 2000 LFs in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .stats import ABSTAIN, SufficientStats

_CHUNK_CELLS = 4_000_000  # rows * classes per predict chunk (32 MB of float64)
_PLAIN_PAGES_BYTES = 1 << 28  # results this large are allocated without the huge-page hint

try:  # numpy's switch for the MADV_HUGEPAGE hint it gives every large allocation
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # numpy < 2
    try:
        from numpy.core.multiarray import _set_madvise_hugepage
    except ImportError:
        _set_madvise_hugepage = None


def empty_result(shape: tuple[int, int]) -> np.ndarray:
    """``np.empty(shape)`` (float64) for a large result, in ordinary pages.

    numpy asks the kernel for transparent huge pages on every large allocation
    (``madvise(MADV_HUGEPAGE)``). Where the kernel compacts memory for such regions on the
    first touch (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, a common
    default), filling a fresh multi-GB result stalls: writing a new [300k, 1461] float64
    array took 7-9 s of system time in a fresh process against 1.3-2.5 s in ordinary
    pages. The hint is turned off around this one allocation only.
    """
    n_bytes = 8 * int(np.prod(shape))
    if _set_madvise_hugepage is None or n_bytes < _PLAIN_PAGES_BYTES:
        return np.empty(shape)
    before = _set_madvise_hugepage(False)
    try:
        return np.empty(shape)
    finally:
        _set_madvise_hugepage(before)


@dataclass(frozen=True)
class VoteTable:
    """Votes of ``n_rows`` rows (or patterns) of an ``[n, m]`` label matrix.

    Attributes
    ----------
    row, lf, cls : ndarray of int64, shape [nnz]
        One entry per vote, sorted by row.
    row_weight : ndarray of float64, shape [n_rows]
        Multiplicity of each row (pattern counts; ones for raw rows).
    n_rows, n_lfs, k : int
    vote_weight : ndarray of float64, shape [nnz], optional
        Weight of each vote in the per-LF counts; defaults to its row's weight. (The
        moment estimator's pseudo-rows count differently for the two LFs of a pair.)
    """

    row: np.ndarray
    lf: np.ndarray
    cls: np.ndarray
    row_weight: np.ndarray
    n_rows: int
    n_lfs: int
    k: int
    vote_weight: np.ndarray | None = None

    def weight_of_votes(self) -> np.ndarray:
        return self.row_weight[self.row] if self.vote_weight is None else self.vote_weight

    @property
    def total(self) -> float:
        return float(self.row_weight.sum())

    @classmethod
    def from_matrix(cls, L: np.ndarray, k: int, row_weight: np.ndarray | None = None) -> VoteTable:
        L = np.asarray(L)
        n, m = L.shape
        flat = np.ascontiguousarray(L).reshape(-1)
        idx = np.flatnonzero(flat != ABSTAIN)
        row = idx // max(m, 1)
        lf = np.multiply(row, m)
        np.subtract(idx, lf, out=lf)  # in place: fresh large temporaries are costly
        w = np.ones(n) if row_weight is None else np.asarray(row_weight, dtype=np.float64)
        return cls(
            row=row,
            lf=lf,
            cls=flat[idx].astype(np.int64),
            row_weight=w,
            n_rows=n,
            n_lfs=m,
            k=k,
        )

    @classmethod
    def from_stats(cls, stats: SufficientStats) -> VoteTable:
        if stats.patterns is None:
            raise ValueError("these statistics carry no vote patterns (too many distinct rows)")
        return cls.from_matrix(stats.patterns, stats.cardinality, stats.counts)

    def unit_counts(self) -> np.ndarray:
        """Weighted number of votes per (LF, class): shape [m, k]."""
        key = self.lf * self.k + self.cls
        c = np.bincount(key, weights=self.weight_of_votes(), minlength=self.n_lfs * self.k)
        return c.reshape(self.n_lfs, self.k)


class BumpPosterior:
    """Posterior of a model whose class score is ``log_prior + sum of per-vote bumps``.

    The score of class ``c`` on row ``r`` is ``log_prior[c] + B[r, c]`` where ``B[r, c]`` sums
    the weights of the row's votes for ``c``; classes nobody voted for keep ``log_prior``.
    The normalizer is computed with a per-row log-sum-exp over the voted classes plus the
    prior mass of the others, so nothing overflows with thousands of votes, and nothing
    of size ``rows * k`` is built.
    """

    _DENSE_CELLS = 5_000_000  # below this many rows*k, cells are every (row, class) slot

    def __init__(self, votes: VoteTable):
        self.votes = votes
        k, n = votes.k, votes.n_rows
        # Few classes: a dense score is cheaper than grouping the votes. Its cells are
        # class-major ([k, rows]) so the per-row reductions run over contiguous rows.
        self.dense = n * k <= self._DENSE_CELLS and k <= 64
        if self.dense:
            inv = np.multiply(votes.cls, n)
            inv += votes.row
            self.inv = inv.reshape(-1)  # vote -> (class, row) cell
            self.cell_row = np.tile(np.arange(n), k)
            self.cell_cls = np.repeat(np.arange(k), n)
            return
        key = votes.row * k + votes.cls
        uniq, inv = np.unique(key, return_inverse=True)
        self.inv = inv.reshape(-1)  # vote -> (row, class) cell
        self.cell_row = uniq // k
        self.cell_cls = uniq % k
        # cells are sorted by row: start index of each row that has a cell
        starts = np.flatnonzero(np.r_[True, self.cell_row[1:] != self.cell_row[:-1]])
        self.starts = starts
        self.start_rows = self.cell_row[starts] if len(uniq) else np.zeros(0, np.int64)
        # cell -> index of its row among the rows that have cells
        self.seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(uniq)]))

    def compute(self, log_prior: np.ndarray, vote_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(cell_post, log_z)``.

        ``cell_post[i]`` is the posterior of class ``cell_cls[i]`` on row ``cell_row[i]``;
        every other class ``y`` of row ``r`` has posterior ``exp(log_prior[y] - log_z[r])``.
        ``log_prior`` must be normalized (``logsumexp == 0``).
        """
        return self.compute_cells(log_prior, np.bincount(self.inv, weights=vote_weight, minlength=len(self.cell_row)))

    def compute_cells(self, log_prior: np.ndarray, bump: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`compute`, from the summed vote weight of each cell (``bump[i]`` for
        class ``cell_cls[i]`` on row ``cell_row[i]``)."""
        v = self.votes
        n = v.n_rows
        if self.dense:
            S = bump.reshape(v.k, n)
            S += log_prior[:, None]
            mx = S.max(axis=0)
            S -= mx
            np.exp(S, out=S)
            z = S.sum(axis=0)
            S /= z
            return S.reshape(-1), mx + np.log(z)
        log_z = np.zeros(n)
        if self.inv.size == 0:
            return np.zeros(0), log_z
        score = log_prior[self.cell_cls] + bump
        prior = np.exp(log_prior)
        # prior mass of the classes that got no vote on the row
        voted_mass = np.add.reduceat(prior[self.cell_cls], self.starts)
        rest = np.clip(1.0 - voted_mass, 0.0, None)
        with np.errstate(divide="ignore"):
            log_rest = np.log(rest)
        mx = np.maximum(np.maximum.reduceat(score, self.starts), log_rest)
        seg = self.seg
        s = np.add.reduceat(np.exp(score - mx[seg]), self.starts) + np.exp(log_rest - mx)
        lz = mx + np.log(s)
        log_z[self.start_rows] = lz
        cell_post = np.exp(score - lz[seg])
        return cell_post, log_z

    def class_totals(self, log_prior: np.ndarray, cell_post: np.ndarray, log_z: np.ndarray) -> np.ndarray:
        """Weighted sum of posteriors over rows, shape [k]."""
        v = self.votes
        w = v.row_weight
        if self.dense:
            return cell_post.reshape(v.k, v.n_rows) @ w
        base = np.exp(log_prior) * float(np.sum(w * np.exp(-log_z)))
        if cell_post.size:
            cw = w[self.cell_row]
            corr = cw * (cell_post - np.exp(log_prior[self.cell_cls] - log_z[self.cell_row]))
            base = base + np.bincount(self.cell_cls, weights=corr, minlength=v.k)
        return base


def bump_proba(L: np.ndarray, log_prior: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``predict_proba`` of a bump model: ``weights[j, v]`` is added to class ``v`` when LF ``j`` votes ``v``.

    Parameters
    ----------
    L : ndarray, shape [n, m], validated
    log_prior : ndarray, shape [k], normalized
    weights : ndarray, shape [m, k]
    """
    n, m = L.shape
    k = len(log_prior)
    out = empty_result((n, k))
    few = k <= 16 and m * k <= 4096
    # many classes: the work per chunk is O(votes), the [rows, k] output is written in place
    step = max(1, _CHUNK_CELLS // max(k if few else m, 1))
    prior = np.exp(log_prior)
    for lo in range(0, n, step):
        Lc = L[lo : lo + step]
        nc = len(Lc)
        if few:
            # few classes: gather per LF into a dense score (fast, no sort)
            S = np.broadcast_to(log_prior, (nc, k)).copy()
            for j in range(m):
                col = Lc[:, j]
                hit = col != ABSTAIN
                if hit.any():
                    idx = np.flatnonzero(hit)
                    S[idx, col[idx]] += weights[j, col[idx]]
            mx = S.max(axis=1, keepdims=True)
            S -= mx
            np.exp(S, out=S)
            S /= S.sum(axis=1, keepdims=True)
            out[lo : lo + nc] = S
        else:
            vt = VoteTable.from_matrix(Lc, k)
            bp = BumpPosterior(vt)
            cell_post, log_z = bp.compute(log_prior, weights[vt.lf, vt.cls])
            # classes nobody voted for on a row: prior[y] * exp(-log_z[row]), an outer
            # product (one multiply per cell, no exp); then the voted cells
            block = out[lo : lo + nc]
            with np.errstate(over="ignore"):
                np.multiply.outer(np.exp(-log_z), prior, out=block)
            block[bp.cell_row, bp.cell_cls] = cell_post
    return out


_BLOCK_TABLE_ROWS = 4096  # vote combinations per block table (its size: rows x classes float64)


def _lf_blocks(m: int, k: int) -> list[range]:
    """LFs in blocks of ``g`` with ``(k + 1) ** g <= _BLOCK_TABLE_ROWS``; empty when ``g`` would be 1."""
    g = 1
    while (k + 1) ** (g + 1) <= _BLOCK_TABLE_ROWS:
        g += 1
    if g < 2:
        return []
    return [range(lo, min(lo + g, m)) for lo in range(0, m, g)]


def _block_table(delta: np.ndarray, block: range) -> np.ndarray:
    """``T[idx] = sum_j delta[j, v_j + 1]`` for every vote combination of ``block`` (first LF the top digit)."""
    k = delta.shape[2]
    table = np.zeros((1, k))
    for j in block:
        table = (table[:, None, :] + delta[j][None, :, :]).reshape(-1, k)
    return table


def block_code(columns: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Each row's code for a block of LFs: its digits (0 abstain, ``v + 1`` a vote for ``v``) read as a
    number in base ``k + 1``, the block's first LF the most significant; ``columns``: the LFs' votes."""
    code = np.asarray(columns[0]).astype(np.intp)  # the index type: bincount and take convert nothing
    for col in columns[1:]:
        code *= k + 1
        code += col
    code += ((k + 1) ** len(columns) - 1) // k  # the +1 of every digit
    return code


def table_proba(L: np.ndarray, log_prior: np.ndarray, log_table: np.ndarray) -> np.ndarray:
    """``predict_proba`` of a full-table model: ``log_table[j, v + 1, y] = log P(L_j = v | y)``."""
    n, m = L.shape
    k = len(log_prior)
    out = empty_result((n, k))
    step = max(1, _CHUNK_CELLS // max(k, 1))
    base = log_prior + log_table[:, 0, :].sum(axis=0)
    delta = log_table - log_table[:, :1, :]  # relative to abstaining
    blocks = _lf_blocks(m, k)
    tables = [_block_table(delta, block) for block in blocks] if blocks else []
    for lo in range(0, n, step):
        Lc = L[lo : lo + step]
        S = np.broadcast_to(base, (len(Lc), k)).copy()
        if blocks:
            # Few classes: each block of LFs' votes is one index into a table of their summed log
            # ratios, so a row costs one gather per block instead of one scattered add per LF.
            for block, table in zip(blocks, tables):
                S += table[block_code([Lc[:, j] for j in block], k)]
        else:
            for j in range(m):
                col = Lc[:, j]
                hit = np.flatnonzero(col != ABSTAIN)
                if hit.size:
                    S[hit] += delta[j, col[hit] + 1]
        S -= S.max(axis=1, keepdims=True)
        np.exp(S, out=S)
        S /= S.sum(axis=1, keepdims=True)
        out[lo : lo + len(Lc)] = S
    return out


def duplicate_groups(stats: SufficientStats) -> np.ndarray:
    """Representative LF of each LF: ``rep[j] == j`` unless LF ``j`` has exactly the votes
    of an earlier LF ``rep[j]`` on every row (found from ``overlap``, no rows needed)."""
    m, k = stats.n_lfs, stats.cardinality
    cov = np.asarray(stats.lf_coverage)
    if not stats.overlap_computed and stats.patterns is not None:
        return _duplicate_columns(stats.patterns, cov)
    O = stats.overlap
    if sp.issparse(O):
        coo = sp.coo_matrix(O)
        same = (coo.row % k) == (coo.col % k)
        agree = sp.coo_matrix(
            (coo.data[same], (coo.row[same] // k, coo.col[same] // k)), shape=(m, m)
        ).toarray()
    else:
        agree = np.einsum("iaja->ij", np.asarray(O).reshape(m, k, m, k))
    rep = np.arange(m)
    dup = (agree == cov[:, None]) & (agree == cov[None, :]) & (cov[:, None] > 0)
    for j in range(m):
        earlier = np.flatnonzero(dup[j, :j])
        if earlier.size:
            rep[j] = rep[earlier[0]]
    return rep


def _duplicate_columns(P: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """:func:`duplicate_groups` from the pattern table ``P: [p, m]``: LFs whose columns are
    equal (and vote at all). Columns are hashed (a wrapping int64 dot product with random
    odd multipliers), and only columns with equal hashes are compared."""
    p, m = P.shape
    rep = np.arange(m)
    if p == 0 or m < 2:
        return rep
    mult = np.random.default_rng(0).integers(1, 2**62, p, dtype=np.int64) | 1
    h = np.zeros(m, dtype=np.int64)
    step = max(1, (1 << 22) // m)
    with np.errstate(over="ignore"):
        for lo in range(0, p, step):
            h += mult[lo:lo + step] @ P[lo:lo + step].astype(np.int64)
    order = np.lexsort((np.arange(m), h))  # by hash, then column index
    hs = h[order]
    bounds = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi - lo < 2:
            continue
        reps: list[int] = []  # representatives of this hash, in column order
        for j in order[lo:hi]:
            j = int(j)
            if cov[j] > 0:
                same = next((c for c in reps if np.array_equal(P[:, c], P[:, j])), None)
                if same is not None:
                    rep[j] = same
                    continue
            reps.append(j)
    return rep
