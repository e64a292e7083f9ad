"""The two products of the confusion EM's inner loop, over a (weighted) vote table.

Call a *unit* one (LF, voted class) pair and ``A: [p, m * k]`` the 0/1 incidence of rows (or
distinct patterns) and the units they contain. Every EM step needs

* the E-step's class scores, ``S[y, r] = sum_u A[r, u] * score[y, u]``, turned into
  posteriors ``post[y, r]`` by a softmax over ``y``;
* the M-step's expected counts, ``nu[u, y] = sum_r A[r, u] * w[r] * post[y, r]``.

Two ways to compute them, with the same results up to float rounding:

* :class:`SparseProducts`: ``A`` as a sparse matrix, ``k`` sparse matrix-vector products
  each way. Cost O(votes * k) per step. Right for crowd matrices: many workers, few
  answers per item.
* :class:`BlockProducts`: the LFs cut into ``B`` blocks of consecutive LFs; a row's votes
  within a block (its *sub-pattern*, one of ``(k+1)^b``) index a small table, so a row's
  score is the sum of ``B`` table entries (or, with two classes, ``exp(-score)`` the
  product of ``B`` entries of the tables' exponentials) and the M-step's counts are ``B``
  weighted histograms over the sub-patterns (rows sorted by sub-pattern once, then
  :func:`numpy.add.reduceat`), mapped to units by a small dense product. Cost O(rows * B * (k - 1)) per step: scores and counts are kept relative
  to class 0 (class 0's posterior is one minus the others', its counts the sub-pattern's
  weight minus the others'). Right for LF matrices with few LFs voting on most rows:
  1M x 10 x 2 has 20,657 patterns, 109,927 votes and 2 blocks of 5 LFs, so a step reads
  20,657 x 2 table entries instead of 109,927 x 4 sparse entries.

:func:`vote_products` picks the cheaper one.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ._votes import VoteTable, block_code

__all__ = ["BlockProducts", "SparseProducts", "vote_products", "pattern_products", "blocks_for"]

MAX_SUBPATTERN_CODES = 4096  # (k+1)^b: the per-block code space, a bincount's length
MAX_UNIT_TABLE_CELLS = 2_000_000  # m * k * (sub-patterns of all blocks): the dense unit map


def blocks_for(n_rows: int, m: int, k: int) -> int:
    """LFs per block: blocks as few as the code space allows, then as even as possible."""
    cap = max(k + 1, min(MAX_SUBPATTERN_CODES, n_rows // 8))
    b = max(1, int(math.floor(math.log(cap) / math.log(k + 1) + 1e-9)))
    b = min(b, max(m, 1))
    n_blocks = -(-m // b)
    return -(-m // n_blocks)


def _blocks_pay(p: int, m: int, k: int, n_votes: int) -> int:
    """LFs per block when :class:`BlockProducts` costs less than :class:`SparseProducts`
    (``rows * blocks`` table reads against ``votes`` sparse entries, tables small), else 0."""
    if m == 0 or p == 0 or k < 2:
        return 0
    b = blocks_for(p, m, k)
    n_blocks = -(-m // b)
    if n_blocks * p <= n_votes and m * k * n_blocks * (k + 1) ** b <= MAX_UNIT_TABLE_CELLS:
        return b
    return 0


def vote_products(vt: VoteTable) -> SparseProducts | BlockProducts:
    """The cheaper products for a vote table (see :func:`_blocks_pay`). Votes weighted
    apart from their rows (``vote_weight``) take the sparse products: blocks weigh rows."""
    b = _blocks_pay(vt.n_rows, vt.n_lfs, vt.k, len(vt.row))
    if not b or vt.vote_weight is not None:
        return SparseProducts(vt)
    P = np.full((vt.n_rows, vt.n_lfs), -1, dtype=np.int64)
    P[vt.row, vt.lf] = vt.cls
    return BlockProducts(P, vt.row_weight, vt.k, b)


def pattern_products(P: np.ndarray, counts: np.ndarray, k: int) -> SparseProducts | BlockProducts:
    """The cheaper products for a pattern table ``P: [p, m]`` (-1 = abstain) with its counts."""
    p, m = P.shape
    b = _blocks_pay(p, m, k, int(np.count_nonzero(P != -1)))
    if not b:
        return SparseProducts(VoteTable.from_matrix(P, k, counts))
    return BlockProducts(P, counts, k, b)


def _softmax_rows(S: np.ndarray) -> np.ndarray:
    """In place: softmax over axis 0 of class-major scores ``S: [k, p]``."""
    S -= S.max(axis=0)  # log-sum-exp by hand: scipy's costs 5x more
    np.exp(S, out=S)
    S /= S.sum(axis=0)
    return S


class SparseProducts:
    """Both products as sparse matrix-vector products over the votes (O(votes * k))."""

    def __init__(self, vt: VoteTable):
        k, m, p = vt.k, vt.n_lfs, vt.n_rows
        self.k, self.m, self.p = k, m, p
        self.w = vt.row_weight
        self.total = vt.total
        unit = vt.lf * k + vt.cls
        vw = vt.weight_of_votes()
        self._unit_counts = np.bincount(unit, weights=vw, minlength=m * k).reshape(m, k)
        # units x rows weighted by row weights; and its 0/1 transpose
        self.to_units = sp.csr_array((vw, (unit, vt.row)), shape=(m * k, p))
        self.to_rows = sp.csr_array((np.ones(len(unit)), (vt.row, unit)), shape=(p, m * k))
        self._start = np.bincount(vt.row * k + vt.cls, minlength=p * k).reshape(p, k).astype(np.float64)
        # Few classes: posteriors are kept class-major ([k, p]) and every product is k
        # sparse matrix-vector products, so the per-row reductions run over contiguous rows
        # (numpy's reductions along a short last axis cost several times more).
        self.cm = k <= 16
        self._nu = np.empty((m * k, k))

    def unit_counts(self) -> np.ndarray:
        """Weighted votes per (LF, class), ``[m, k]``."""
        return self._unit_counts

    def start(self) -> np.ndarray:
        """Majority vote (votes split among tied classes; no vote: uniform)."""
        post = self._start
        s = post.sum(axis=1, keepdims=True)
        post = np.where(s > 0, post / np.where(s > 0, s, 1.0), 1.0 / self.k)
        return np.ascontiguousarray(post.T) if self.cm else post

    def counts(self, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Ny [k], nu [m * k, k])``: expected rows per class and counts per unit and class."""
        if self.cm:
            for c in range(self.k):
                self._nu[:, c] = self.to_units @ post[c]
            return post @ self.w, self._nu
        return self.w @ post, self.to_units @ post

    def e_step(self, log_conf: np.ndarray, log_pi: np.ndarray) -> np.ndarray:
        """Posteriors under ``log_conf [m, y, v]`` and ``log_pi [k]``."""
        k, m, p = self.k, self.m, self.p
        if self.cm:
            # unit u = (j, v) contributes log C[j, :, v] to its rows
            unit_score = np.ascontiguousarray(log_conf.transpose(1, 0, 2).reshape(k, m * k))  # [y, u]
            S = np.empty((k, p))
            for c in range(k):
                S[c] = self.to_rows @ unit_score[c]
            S += log_pi[:, None]
            return _softmax_rows(S)
        S = self.to_rows @ log_conf.transpose(0, 2, 1).reshape(m * k, k)
        S += log_pi
        S -= S.max(axis=1, keepdims=True)
        np.exp(S, out=S)
        S /= S.sum(axis=1, keepdims=True)
        return S

    def posterior(self, post: np.ndarray) -> np.ndarray:
        """``[p, k]`` posteriors of what :meth:`e_step` returned."""
        return post.T if self.cm else post


class BlockProducts:
    """Both products through sub-pattern tables of blocks of ``b`` LFs (O(rows * blocks * k)).

    Parameters
    ----------
    P : ndarray of int, shape [p, m]
        Votes in ``{-1, 0..k-1}`` (a pattern table, or rows).
    w : ndarray of float64, shape [p]
        Row weights (pattern counts), positive.
    k, b : int
        Classes; LFs per block (``(k+1)^b`` codes per block, at most
        :data:`MAX_SUBPATTERN_CODES`).

    The E-step's result (what :meth:`counts` takes) holds classes 1..k-1 only, class-major
    (``[k - 1, p]``); with two classes it is the weighted posterior ``w * P(y = 1)``, the
    one thing the M-step reads.
    """

    def __init__(self, P: np.ndarray, w: np.ndarray, k: int, b: int):
        p, m = P.shape
        self.k, self.m, self.p = k, m, p
        self.w = np.asarray(w, dtype=np.float64)
        self.total = float(self.w.sum())
        base = k + 1
        bounds = [(lo, min(lo + b, m)) for lo in range(0, m, b)]
        PT = np.ascontiguousarray(P.T)  # one LF's votes contiguous
        self.gidx = np.empty((len(bounds), p), dtype=np.intp)  # into the concatenated sub-patterns
        self.order: list[np.ndarray | None] = []  # rows sorted by sub-pattern (None: already)
        self.starts: list[np.ndarray] = []  # where each sub-pattern's run of sorted rows starts
        subs = []
        offset = 0
        for i, (lo, hi) in enumerate(bounds):
            # each row's code: its digits (0 abstain, v + 1 a vote for v) read as a number in
            # base k + 1 with the block's first LF the most significant, so lexicographically
            # sorted patterns (as the statistics hold them) have block 0's codes sorted
            code = block_code(PT[lo:hi], k)
            n_rows_of = np.bincount(code, minlength=base ** (hi - lo))
            used = np.flatnonzero(n_rows_of)
            sub = (np.cumsum(n_rows_of > 0) - 1)[code]  # 0..len(used)-1, in code order
            sizes = n_rows_of[used]
            self.starts.append(np.concatenate(([0], np.cumsum(sizes[:-1]))))
            ids = sub.astype(np.int16) if len(used) < 2**15 else sub  # 16 bits: a radix argsort
            self.order.append(None if np.all(ids[1:] >= ids[:-1]) else np.argsort(ids, kind="stable"))
            np.add(sub, offset, out=self.gidx[i])
            subs.append((lo, hi, used, offset))
            offset += len(used)
        n_sub = offset
        # M[u, s] = 1 when sub-pattern s (of LF u // k's block) holds the vote u
        M = np.zeros((m * k, n_sub))
        for lo, hi, used, off in subs:
            cols = off + np.arange(len(used))
            for i in range(hi - lo):
                digit = (used // base ** (hi - lo - 1 - i)) % base
                votes = digit > 0
                M[(lo + i) * k + digit[votes] - 1, cols[votes]] = 1.0
        self.M = M
        self.n_sub = n_sub
        self.n_blocks = len(bounds)
        self.sub_weight = self._histogram(self.w[None, :])[0]
        self._unit_counts = (M @ self.sub_weight).reshape(m, k)

    def _histogram(self, x: np.ndarray) -> np.ndarray:
        """``H[c, s]``: the sum of ``x[c, r]`` over the rows ``r`` of sub-pattern ``s``
        (every block's sub-patterns, concatenated). Sorted runs: a gather and
        :func:`numpy.add.reduceat`, several times faster than a weighted bincount."""
        H = np.empty((x.shape[0], self.n_sub))
        off = 0
        for order, starts in zip(self.order, self.starts):
            xs = x if order is None else np.take(x, order, axis=1)
            H[:, off:off + len(starts)] = np.add.reduceat(xs, starts, axis=1)
            off += len(starts)
        return H

    def unit_counts(self) -> np.ndarray:
        """Weighted votes per (LF, class), ``[m, k]``."""
        return self._unit_counts

    def start(self) -> np.ndarray:
        """Majority vote (votes split among tied classes; no vote: uniform), as :meth:`e_step`."""
        k = self.k
        per_sub = self.M.reshape(self.m, k, self.n_sub).sum(axis=0)  # votes per class, [k, n_sub]
        votes = np.take(per_sub, self.gidx[0], axis=1)
        for g in self.gidx[1:]:
            votes += np.take(per_sub, g, axis=1)
        s = votes.sum(axis=0)
        post = np.where(s > 0, votes[1:] / np.where(s > 0, s, 1.0), 1.0 / k)
        return post * self.w if k == 2 else post

    def counts(self, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Ny [k], nu [m * k, k])`` from what :meth:`e_step` returned."""
        k = self.k
        wp = post if k == 2 else post * self.w
        H = np.empty((k, self.n_sub))
        H[1:] = self._histogram(wp)
        np.subtract(self.sub_weight, H[1:].sum(axis=0), out=H[0])  # class 0: the rest
        Ny = np.empty(k)
        Ny[1:] = wp.sum(axis=1)
        Ny[0] = self.total - Ny[1:].sum()
        return Ny, self.M @ H.T

    def e_step(self, log_conf: np.ndarray, log_pi: np.ndarray) -> np.ndarray:
        """Posteriors of classes 1..k-1 (``[k - 1, p]``; weighted with two classes) under
        ``log_conf [m, y, v]`` and ``log_pi [k]``."""
        k, m = self.k, self.m
        unit_score = log_conf.transpose(1, 0, 2).reshape(k, m * k)  # [y, u]
        G = (unit_score[1:] - unit_score[0]) @ self.M  # scores against class 0, [k - 1, n_sub]
        G[:, :len(self.starts[0])] += (log_pi[1:] - log_pi[0])[:, None]  # the prior, once per row (block 0)
        if k == 2:  # w * P(y = 1) = w / (1 + exp(-score))
            g = np.negative(G.reshape(-1))
            if np.abs(g).max(initial=0.0) * self.n_blocks < 700.0:
                # exp(-score) as the product of the blocks' exp(-table): no exp per row, and
                # no factor or product can overflow or underflow
                e = np.exp(g)
                S = np.take(e, self.gidx[0])
                for f in self.gidx[1:]:
                    S *= np.take(e, f)
            else:
                S = np.take(g, self.gidx[0])
                for f in self.gidx[1:]:
                    S += np.take(g, f)
                with np.errstate(over="ignore"):  # exp(-score) = inf gives posterior 0, as it should
                    np.exp(S, out=S)
            S += 1.0
            return np.divide(self.w, S, out=S)[None, :]
        S = np.take(G, self.gidx[0], axis=1)
        for f in self.gidx[1:]:
            S += np.take(G, f, axis=1)
        mx = np.maximum(S.max(axis=0), 0.0)  # class 0's score is 0
        S -= mx
        np.exp(S, out=S)
        S /= np.exp(-mx) + S.sum(axis=0)
        return S

    def posterior(self, post: np.ndarray) -> np.ndarray:
        """``[p, k]`` posteriors of what :meth:`e_step` returned."""
        out = np.empty((self.p, self.k))
        out[:, 1:] = (post / self.w).T if self.k == 2 else post.T
        out[:, 0] = 1.0 - out[:, 1:].sum(axis=1)
        return out
