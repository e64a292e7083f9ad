"""Sufficient statistics of a label matrix: the contract between Spark and the label model.

The aggregate job computes a :class:`SufficientStats` on Spark from the long-format votes
table; :func:`stats_from_matrix` computes the same object with numpy from a dense label
matrix. Every field is an exact count, so the two paths can be compared for equality, and
nothing here grows with the row count except the number of distinct vote patterns.

Conventions: ``L`` is an ``[n, m]`` integer matrix with values in ``{-1, 0, ..., k-1}``
where ``-1`` (``ABSTAIN``) means the LF did not vote; ``k`` is the cardinality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._patterns import _LEXSORT_MAX_WORDS, decode_rows, decode_words, digit_bits, row_words, sort_words, unique_words

ABSTAIN = -1

# overlap stays a dense ndarray up to this many (m*k) indicator columns (128 MiB of
# int64); above it, a scipy.sparse CSR array (1000 classes x 2000 LFs is 2M columns).
DENSE_OVERLAP_MAX_COLS = 4096
_STATS_CHUNK_CELLS = 1 << 25  # label-matrix cells per stats_from_matrix chunk
_DENSE_GRAM_COLS = 1024  # up to this many (m*k) columns the overlap is a dense one-hot product
_GRAM_CHUNK_CELLS = 1 << 18  # one-hot cells (float32) per block of that product: 1 MiB stays in L2
_GRAM_MIN_ROWS = 2048  # rows per block at least (wide one-hots)

__all__ = ["ABSTAIN", "SufficientStats", "stats_from_matrix", "check_label_matrix"]


@dataclass(frozen=True, eq=False)
class SufficientStats:
    """Aggregated statistics of ``L: [n, m]``, enough to fit every label model here.

    Attributes
    ----------
    n_rows : int
        Number of rows ``n`` (rows where every LF abstained included).
    cardinality : int
        Number of classes ``k``.
    lf_names : tuple of str
        Names of the ``m`` LFs, in column order of ``L``.
    overlap : ndarray or scipy.sparse CSR array, shape [m*k, m*k], int64
        ``overlap[i*k + a, j*k + b]`` = number of rows with ``L[:, i] == a`` and
        ``L[:, j] == b``. The diagonal ``k x k`` blocks are diagonal and hold each LF's
        per-class vote counts. ``overlap / n_rows`` is Snorkel's ``O``. Dense when
        ``m*k <= DENSE_OVERLAP_MAX_COLS``, sparse above (consumers accept both). It may
        be passed as ``None`` when ``patterns`` are given: it is then computed from the
        patterns on first access (:func:`stats_from_matrix` does so for sparse overlaps,
        which EM over patterns never reads: 1000 classes x 2000 LFs would hold billions
        of pairs).
    lf_coverage : ndarray, shape [m], int64
        Rows on which LF ``j`` voted.
    lf_overlap : ndarray, shape [m], int64
        Rows on which LF ``j`` voted and at least one other LF voted.
    lf_conflict : ndarray, shape [m], int64
        Rows on which LF ``j`` voted and another LF voted a different class.
    n_covered, n_overlapped, n_conflicted : int
        Rows with at least one vote / at least two votes / two different classes voted.
    patterns : ndarray, shape [p, m], int16, or None
        The distinct rows of ``L`` in lexicographic order (the all-abstain row included
        when it occurs). ``None`` when there were more than ``max_patterns`` of them.
    counts : ndarray, shape [p], int64, or None
        How many rows have each pattern; sums to ``n_rows``.
    """

    n_rows: int
    cardinality: int
    lf_names: tuple[str, ...]
    overlap: np.ndarray
    lf_coverage: np.ndarray
    lf_overlap: np.ndarray
    lf_conflict: np.ndarray
    n_covered: int
    n_overlapped: int
    n_conflicted: int
    patterns: np.ndarray | None = None
    counts: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_lfs(self) -> int:
        return len(self.lf_names)

    @property
    def has_patterns(self) -> bool:
        return self.patterns is not None

    @property
    def overlap_computed(self) -> bool:
        """Whether ``overlap`` is held (False: it would be computed from the patterns)."""
        return self.__dict__.get("_overlap") is not None

    def class_vote_counts(self) -> np.ndarray:
        """Per-LF per-class vote counts, shape ``[m, k]`` (the diagonal of ``overlap``)."""
        m, k = self.n_lfs, self.cardinality
        if not self.overlap_computed and self.patterns is not None:
            rows, lfs = np.nonzero(self.patterns != ABSTAIN)
            unit = lfs * k + self.patterns[rows, lfs]
            return np.rint(np.bincount(unit, weights=self.counts[rows], minlength=m * k)).astype(np.int64).reshape(m, k)
        diag = self.overlap.diagonal() if sp.issparse(self.overlap) else np.diag(self.overlap)
        return np.asarray(diag, dtype=np.int64).reshape(m, k).copy()

    def overlap_dense(self) -> np.ndarray:
        """``overlap`` as a dense ndarray (raises if that would exceed 2 GiB)."""
        if not sp.issparse(self.overlap):
            return np.asarray(self.overlap)
        cells = self.overlap.shape[0] * self.overlap.shape[1]
        if cells * 8 > 2**31:
            raise MemoryError(
                f"overlap is {self.overlap.shape[0]} x {self.overlap.shape[1]}; too large to "
                "densify; use it as a scipy.sparse array"
            )
        return self.overlap.toarray()

    def equals(self, other: SufficientStats) -> bool:
        """Exact equality of every count (used to check Spark against numpy)."""
        same = (
            self.n_rows == other.n_rows
            and self.cardinality == other.cardinality
            and self.lf_names == other.lf_names
            and (self.n_covered, self.n_overlapped, self.n_conflicted)
            == (other.n_covered, other.n_overlapped, other.n_conflicted)
        )
        arrays = ["lf_coverage", "lf_overlap", "lf_conflict"]
        same = same and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)
        same = same and _overlap_equal(self.overlap, other.overlap)
        if self.has_patterns != other.has_patterns:
            return False
        if self.has_patterns:
            same = same and np.array_equal(self.patterns, other.patterns)
            same = same and np.array_equal(self.counts, other.counts)
        return bool(same)

    def to_npz(self, path: str) -> None:
        """Save as a plain ``.npz`` (no pickled objects)."""
        arrays = {
            "n_rows": np.int64(self.n_rows),
            "cardinality": np.int64(self.cardinality),
            "lf_names": np.array(self.lf_names, dtype=str),
            "lf_coverage": self.lf_coverage,
            "lf_overlap": self.lf_overlap,
            "lf_conflict": self.lf_conflict,
            "label_level": np.array([self.n_covered, self.n_overlapped, self.n_conflicted]),
        }
        if sp.issparse(self.overlap):
            csr = sp.csr_array(self.overlap)
            arrays["overlap_data"] = csr.data.astype(np.int64)
            arrays["overlap_indices"] = csr.indices.astype(np.int64)
            arrays["overlap_indptr"] = csr.indptr.astype(np.int64)
            arrays["overlap_shape"] = np.array(csr.shape, dtype=np.int64)
        else:
            arrays["overlap"] = np.asarray(self.overlap)
        if self.has_patterns:
            arrays["patterns"] = self.patterns
            arrays["counts"] = self.counts
        np.savez_compressed(path, **arrays)

    @classmethod
    def from_npz(cls, path: str) -> SufficientStats:
        with np.load(path, allow_pickle=False) as z:
            covered, overlapped, conflicted = (int(v) for v in z["label_level"])
            if "overlap" in z:
                overlap = z["overlap"]
            else:
                overlap = sp.csr_array(
                    (z["overlap_data"], z["overlap_indices"], z["overlap_indptr"]),
                    shape=tuple(int(x) for x in z["overlap_shape"]),
                )
            return cls(
                n_rows=int(z["n_rows"]),
                cardinality=int(z["cardinality"]),
                lf_names=tuple(str(s) for s in z["lf_names"]),
                overlap=overlap,
                lf_coverage=z["lf_coverage"],
                lf_overlap=z["lf_overlap"],
                lf_conflict=z["lf_conflict"],
                n_covered=covered,
                n_overlapped=overlapped,
                n_conflicted=conflicted,
                patterns=z["patterns"] if "patterns" in z else None,
                counts=z["counts"] if "counts" in z else None,
            )


def _get_overlap(self: SufficientStats) -> Any:
    O = self.__dict__.get("_overlap")
    if O is None:
        if self.patterns is None:
            raise ValueError("these statistics carry neither overlap nor the pattern table")
        m, k = self.n_lfs, self.cardinality
        acc = _Counts(m, k)
        if len(self.counts):
            P = np.ascontiguousarray(self.patterns.T) if acc.dense else self.patterns
            acc.add_overlap(P, np.asarray(self.counts, dtype=np.int64))
        O = acc.overlap()
        self.__dict__["_overlap"] = O
    return O


def _set_overlap(self: SufficientStats, value: Any) -> None:
    self.__dict__["_overlap"] = value


# ``overlap`` is computed on first access when it was given as None (see the class docstring);
# the frozen dataclass's __init__ stores it through this property's setter.
SufficientStats.overlap = property(_get_overlap, _set_overlap, doc="See the class docstring.")  # type: ignore[assignment]


def vote_dtype(cardinality: int) -> np.dtype:
    """Smallest signed integer dtype holding every vote ``-1 .. cardinality - 1``."""
    for dt in (np.int8, np.int16, np.int32):
        if cardinality - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


_MISSING_VOTES = ("L holds missing values (NaN or None); an abstain is -1 here, as in Snorkel: fill them with -1 "
                  "(pandas: L.fillna(-1).astype(int))")


def repeated(names: Sequence[str]) -> list[str]:
    """The names that occur more than once in ``names``, sorted."""
    return sorted({n for n in names if names.count(n) > 1})


def refuse_sparse(L: Any, what: str = "L") -> None:
    """A scipy sparse ``L`` is refused: its absent entries would read as votes for class 0, not abstains."""
    if sp.issparse(L):
        raise ValueError(f"{what} is a scipy sparse matrix; pass a dense one ({what}.toarray()): a stored zero and an "
                         f"absent entry are both a vote for class 0 there, and abstain is -1")


def check_label_matrix(L: Any, cardinality: int) -> np.ndarray:
    """Validate ``L`` and return it as a signed integer array of shape ``[n, m]``.

    A signed integer ``L`` is returned as is (no copy: an int8 matrix stays 1 byte per
    vote); any other dtype is converted to the smallest signed integer dtype holding
    ``-1 .. cardinality - 1`` (:func:`vote_dtype`).
    """
    if cardinality < 2:
        raise ValueError(f"cardinality must be at least 2, got {cardinality}")
    refuse_sparse(L)
    arr = np.asarray(L)
    if arr.ndim != 2:
        raise ValueError(f"L must be a 2-D [n_rows, n_lfs] matrix, got shape {arr.shape}")
    if arr.size and arr.dtype == object:  # e.g. a nullable-integer frame's .to_numpy()
        try:
            arr = arr.astype(np.int64)
        except (TypeError, ValueError):
            if any(v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType"  # pandas' NA
                   for v in arr.ravel()):  # only on this error path
                raise ValueError(_MISSING_VOTES) from None
            arr = arr.astype(str)
    if arr.size and arr.dtype.kind == "b":
        raise ValueError("L is boolean; it must hold class ids (-1 for abstain, 0..k-1 for a vote): map each LF's "
                         "True to the class it votes and False to -1")
    if arr.size and arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(_MISSING_VOTES)
    if arr.size and arr.dtype.kind in "USa":
        raise ValueError(f"L must hold integer class ids (-1 for abstain); got dtype {arr.dtype}: convert it with "
                         f"np.asarray(L, dtype=int) after mapping labels to 0..{cardinality - 1}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError("L must hold integer class ids (-1 for abstain); found non-integers")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < ABSTAIN or hi >= cardinality:
            bad = int(lo) if lo < ABSTAIN else int(hi)
            raise ValueError(
                f"L holds {bad}, outside the label space: votes must be -1 (abstain) or "
                f"0..{cardinality - 1} for cardinality={cardinality}"
            )
    if not np.issubdtype(arr.dtype, np.signedinteger):
        # checked above, so the values fit
        arr = arr.astype(vote_dtype(cardinality))
    return arr


def stats_from_matrix(
    L: Any,
    cardinality: int,
    lf_names: tuple[str, ...] | list[str] | None = None,
    max_patterns: int | None = None,
    weights: Any = None,
) -> SufficientStats:
    """Compute :class:`SufficientStats` of a dense label matrix with numpy.

    Parameters
    ----------
    L : array-like, shape [n, m]
        Votes in ``{-1, 0..k-1}``.
    cardinality : int
        Number of classes ``k``.
    lf_names : sequence of str, optional
        Column names; defaults to ``lf_0 .. lf_{m-1}``.
    max_patterns : int, optional
        Keep the distinct-pattern table only when it has at most this many rows.
    weights : array-like of int, shape [n], optional
        How many rows each row of ``L`` stands for (e.g. ``L`` holds distinct patterns and
        ``weights`` their counts); the result is that of the expanded matrix.

    Notes
    -----
    Rows are first reduced to their distinct patterns (each row packed into int64 words,
    see :mod:`labelmodel._patterns`), and every count is computed from the patterns
    weighted by their counts, so the cost beyond one pass over ``L`` grows with the
    number of distinct patterns, not rows. Rows are processed in chunks, so memory stays
    O(chunk) beyond ``L`` itself.
    """
    L = check_label_matrix(L, cardinality)
    n_lines, m = L.shape
    w_all = None
    if weights is not None:
        w_all = np.asarray(weights, dtype=np.int64)
        if w_all.shape != (n_lines,) or (w_all.size and w_all.min() < 0):
            raise ValueError(f"weights must be {n_lines} non-negative counts, one per row of L; got shape {w_all.shape}")
    k = cardinality
    names = tuple(lf_names) if lf_names is not None else tuple(f"lf_{j}" for j in range(m))
    if len(names) != m:
        raise ValueError(f"lf_names has {len(names)} name{'s' if len(names) != 1 else ''} for {m} LF columns; give "
                         f"one name per column of L")
    if len(set(names)) != m:
        raise ValueError(f"lf_names must be distinct; repeated: {repeated(names)}")

    acc = _Counts(m, k)
    step = max(1, _STATS_CHUNK_CELLS // max(m, 1))
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []  # (words, counts, rows)
    n_pieces_rows = merged_rows = 0
    keep_patterns = m > 0
    # a sparse overlap is left to be computed from the patterns on demand (EM over patterns
    # never reads it); it is accumulated only once the pattern table is dropped
    lazy = m * k > DENSE_OVERLAP_MAX_COLS
    for lo in range(0, n_lines, step):
        Lc = L[lo : lo + step]
        w = None
        if w_all is not None:
            w = w_all[lo : lo + step]
            pos = w > 0
            if not pos.all():
                Lc, w = Lc[pos], w[pos]
        if m == 0:
            acc.n += int(len(Lc) if w is None else w.sum())
            continue
        words, counts = unique_words(row_words(Lc, k), w, k, m, ordered=False)
        # LF-major [m, p] for the dense Gram product; row-major [p, m] (the patterns' own
        # layout, whose nonzero entries come sorted by row) for many columns
        if acc.dense and words.shape[1] == 1:
            # one word per row: the Gram reads the votes from the keys (decoded only if kept)
            PT = None
            acc.add(words[:, 0], counts, with_overlap=not (lazy and keep_patterns))
        else:
            PT = decode_words(words, k, m) if acc.dense else decode_rows(words, k, m)
            acc.add(PT, counts, with_overlap=not (lazy and keep_patterns))
        if keep_patterns:
            pieces.append((words, counts, PT))
            n_pieces_rows += len(words)
            if len(pieces) > 1 and n_pieces_rows > 2 * max(step, merged_rows):
                # merge when the pieces have doubled since the last merge (each row is
                # re-sorted O(log) times; a table that does not compress is not re-sorted
                # after every chunk)
                pieces = [_merge(pieces, k, m)]
                n_pieces_rows = merged_rows = len(pieces[0][0])
            if max_patterns is not None and len(pieces) == 1 and n_pieces_rows > max_patterns:
                if lazy:
                    _add_overlap_of(acc, pieces[0], k, m)
                keep_patterns, pieces = False, []

    patterns = counts = None
    if m == 0:
        patterns = np.zeros((1 if acc.n else 0, 0), dtype=np.int16)
        counts = np.array([acc.n] if acc.n else [], dtype=np.int64)
    elif keep_patterns:
        words, cnt, PT = _merge(pieces, k, m) if pieces else (None, np.zeros(0, np.int64), np.zeros((m, 0) if acc.dense else (0, m), np.int16))
        if max_patterns is None or len(cnt) <= max_patterns:
            if PT is None:
                patterns = decode_rows(words, k, m).astype(np.int16, copy=False)
            else:
                patterns = np.ascontiguousarray(PT.T if acc.dense else PT, dtype=np.int16)
            counts = cnt.astype(np.int64)
            if words is not None and words.shape[1] > _LEXSORT_MAX_WORDS:  # hashed: sort once, here
                order = sort_words(words)
                patterns, counts = patterns[order], counts[order]
        elif lazy:
            _add_overlap_of(acc, (words, cnt, PT), k, m)

    return SufficientStats(
        n_rows=int(acc.n),
        cardinality=int(k),
        lf_names=names,
        overlap=None if lazy and patterns is not None else acc.overlap(),
        lf_coverage=acc.lf_coverage,
        lf_overlap=acc.lf_overlap,
        lf_conflict=acc.lf_conflict,
        n_covered=acc.n_covered,
        n_overlapped=acc.n_overlapped,
        n_conflicted=acc.n_conflicted,
        patterns=patterns,
        counts=counts,
    )


def _add_overlap_of(acc: _Counts, piece: tuple, k: int, m: int) -> None:
    words, counts, PT = piece
    if PT is None:
        PT = decode_words(words, k, m) if acc.dense else decode_rows(words, k, m)
    acc.add_overlap(PT, counts)


def _merge(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], k: int, m: int) -> tuple:
    """One ``(words, counts, rows)`` piece from several, counts summed (rows decoded later)."""
    if len(pieces) == 1:
        return pieces[0]
    words, counts = unique_words(np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]), k, m,
                                 ordered=False)
    return words, counts, None


class _Counts:
    """Running sums of every count of :class:`SufficientStats` over weighted distinct rows."""

    def __init__(self, m: int, k: int) -> None:
        self.m, self.k = m, k
        self.n = self.n_covered = self.n_overlapped = self.n_conflicted = 0
        self.lf_coverage = np.zeros(m, dtype=np.int64)
        self.lf_overlap = np.zeros(m, dtype=np.int64)
        self.lf_conflict = np.zeros(m, dtype=np.int64)
        self.dense = m * k <= _DENSE_GRAM_COLS
        self._overlap: Any = np.zeros((m * k, m * k), dtype=np.int64) if self.dense else None

    def add(self, PT: np.ndarray, w: np.ndarray, with_overlap: bool = True) -> None:
        """Add distinct rows, row ``i`` counted ``w[i]`` times: LF-major ``PT: [m, p]`` (or
        the rows' one-word keys, ``[p]``, see :func:`_weighted_gram`) when ``self.dense``,
        else row-major ``[p, m]``.

        ``with_overlap=False`` leaves the overlap out (it is then computed later)."""
        m, k = self.m, self.k
        self.n += int(w.sum())
        if self.dense:
            # one weighted Gram product of the one-hot votes, with three more indicator
            # rows (covered, overlapped, conflicted), gives every count at once
            G = _weighted_gram(PT, w, k, m)
            mk = m * k
            if with_overlap:
                self._overlap += G[:mk, :mk]
            per_lf = G[:mk, mk:].reshape(m, k, 3).sum(axis=1)
            self.lf_coverage += per_lf[:, 0]
            self.lf_overlap += per_lf[:, 1]
            self.lf_conflict += per_lf[:, 2]
            self.n_covered += int(G[mk, mk])
            self.n_overlapped += int(G[mk + 1, mk + 1])
            self.n_conflicted += int(G[mk + 2, mk + 2])
            return
        # many columns: every count from the list of votes (sorted by row, then LF)
        p = PT.shape[0]
        rows, lfs = np.nonzero(PT != ABSTAIN)
        cls = PT[rows, lfs]
        n_votes = np.bincount(rows, minlength=p)
        indptr = np.zeros(p + 1, dtype=np.int64)
        np.cumsum(n_votes, out=indptr[1:])
        conflicted = np.zeros(p, dtype=bool)
        has = n_votes > 0
        if has.any():
            starts = indptr[:-1][has]
            conflicted[has] = np.minimum.reduceat(cls, starts) != np.maximum.reduceat(cls, starts)
        wr = w[rows].astype(np.float64)
        for total, mask in ((self.lf_coverage, None), (self.lf_overlap, n_votes >= 2), (self.lf_conflict, conflicted)):
            vw = wr if mask is None else wr * mask[rows]
            total += np.rint(np.bincount(lfs, weights=vw, minlength=m)).astype(np.int64)
        self.n_covered += int(w[has].sum())
        self.n_overlapped += int(w[n_votes >= 2].sum())
        self.n_conflicted += int(w[conflicted].sum())
        if with_overlap:
            self._add_sparse_overlap(p, lfs * k + cls, indptr, w[rows])

    def add_overlap(self, PT: np.ndarray, w: np.ndarray) -> None:
        """Add the overlap only (no other count) of distinct rows (layout as in :meth:`add`)."""
        if self.dense:
            self._overlap += _weighted_gram(PT, w, self.k)[: self.m * self.k, : self.m * self.k]
            return
        p = PT.shape[0]
        rows, lfs = np.nonzero(PT != ABSTAIN)
        indptr = np.zeros(p + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=p), out=indptr[1:])
        self._add_sparse_overlap(p, lfs * self.k + PT[rows, lfs], indptr, w[rows])

    def _add_sparse_overlap(self, p: int, col_key: np.ndarray, indptr: np.ndarray, vote_w: np.ndarray) -> None:
        # a sparse one-hot [p, m*k] (a dense one would be p*m*k floats), built as CSR directly
        shape = (p, self.m * self.k)
        ind_T = sp.csc_array((np.ones(len(col_key), dtype=np.int64), col_key, indptr), shape=shape[::-1])
        weighted = sp.csr_array((vote_w, col_key, indptr), shape=shape)
        part = (ind_T @ weighted).tocsr()
        self._overlap = part if self._overlap is None else self._overlap + part

    def overlap(self) -> Any:
        """The accumulated overlap, dense up to ``DENSE_OVERLAP_MAX_COLS`` columns."""
        m, k = self.m, self.k
        O = self._overlap
        if O is None:
            O = sp.csr_array((m * k, m * k), dtype=np.int64)
        if m * k <= DENSE_OVERLAP_MAX_COLS:
            return O if isinstance(O, np.ndarray) else O.toarray().astype(np.int64)
        if isinstance(O, np.ndarray):
            O = sp.csr_array(O)
        O.sort_indices()
        return sp.csr_array(O, dtype=np.int64)


def _weighted_gram(PT: np.ndarray, w: np.ndarray, k: int, m: int | None = None) -> np.ndarray:
    """``X.T @ diag(w) @ X`` for ``X: [p, m*k + 3]``, exact, int64: the one-hot votes of the
    rows ``PT: [m, p]``, then three row indicators (at least one vote, at least two votes,
    two different classes voted). ``PT`` may also be the rows' one-word keys (``[p]`` int64,
    :func:`labelmodel._patterns.row_words` with ``digit_bits(k) * m <= 62``): the votes of
    each block are then shifted out of the keys, with no decoded copy of the rows.

    Computed as ``sum_b 2**b * X_b.T @ X_b`` over the bits ``b`` of the integer weights
    (``X_b``: rows whose weight has bit ``b``). ``X.T @ X`` of a single operand is a BLAS
    ``syrk``; the weighted ``gemm`` shape ``[mk, p] @ [p, mk]`` is the one multithreaded
    OpenBLAS handles badly on a busy machine (seconds instead of milliseconds). float32
    blocks of at most ``2**24`` rows keep every block's sums exact; they are added up in
    float64 (exact below ``2**53``).
    """
    keys = PT.ndim == 1
    if keys:
        if m is None:
            raise TypeError("_weighted_gram of row keys needs m, the number of LFs packed in each key")
        p = len(PT)
    else:
        m, p = PT.shape
    mk = m * k
    cols = mk + 3
    G = np.zeros((cols, cols), dtype=np.int64)
    # small blocks: the one-hot block is written and read back by the product while it
    # is still in cache
    step = int(min(1 << 24, max(_GRAM_MIN_ROWS, _GRAM_CHUNK_CELLS // max(cols, 1))))
    XT_buf = np.empty((cols, max(1, min(step, p))), dtype=np.float32)
    w = np.asarray(w, dtype=np.int64)
    if keys:
        bits_per = digit_bits(k)
        shifts = (bits_per * np.arange(m - 1, -1, -1, dtype=np.int64))[:, None]
        shift_buf = np.empty((m, XT_buf.shape[1]), dtype=np.int64)
        # the digits in the smallest dtype: the one-hot comparison reads 1 byte per vote
        digit_dtype = np.int8 if bits_per <= 7 else np.int16
        digits_buf = np.empty((m, XT_buf.shape[1]), dtype=digit_dtype)
        classes = np.arange(1, k + 1, dtype=digit_dtype)[:, None]  # digit v + 1 for class v
    else:
        classes = np.arange(k, dtype=PT.dtype)[:, None]

    acc = np.zeros((cols, cols))  # float64: exact sums of the exact float32 block products

    def add(src: np.ndarray, sel: np.ndarray | None, b: int) -> None:
        acc[...] = 0.0
        n_sel = src.shape[-1] if sel is None else len(sel)
        for lo in range(0, n_sel, step):
            hi = min(lo + step, n_sel)
            if keys:
                kb = src[lo:hi] if sel is None else src[sel[lo:hi]]
                shifted = shift_buf[:, : hi - lo]
                np.right_shift(kb[None, :], shifts, out=shifted)
                sub = digits_buf[:, : hi - lo]
                np.bitwise_and(shifted, (1 << bits_per) - 1, out=sub, casting="unsafe")
            else:
                sub = src[:, lo:hi] if sel is None else src[:, sel[lo:hi]]
            XT = XT_buf[:, : hi - lo]  # X.T of the block, one row per (LF, class)
            np.equal(sub[:, None, :], classes, out=XT[:mk].reshape(m, k, -1), casting="unsafe")
            n_votes = XT[:mk].sum(axis=0)
            n_classes = XT[:mk].reshape(m, k, -1).max(axis=0).sum(axis=0) if m > 1 else np.minimum(n_votes, 1)
            np.greater_equal(n_votes, 1, out=XT[mk], casting="unsafe")
            np.greater_equal(n_votes, 2, out=XT[mk + 1], casting="unsafe")
            np.greater_equal(n_classes, 2, out=XT[mk + 2], casting="unsafe")
            acc[...] += XT @ XT.T
        G[...] += np.rint(acc).astype(np.int64) << b

    # every row once (no gather), then the extra weight w - 1 of the repeated rows bit by
    # bit, over those rows only (gathered once)
    pos = w > 0
    add(PT, None if pos.all() else np.flatnonzero(pos), 0)
    rep = np.flatnonzero(w > 1)
    if rep.size:
        PR = PT[rep] if keys else PT[:, rep]
        bits = w[rep] - 1
        b = 0
        while bits.any():
            sel = np.flatnonzero(bits & 1)
            if sel.size:
                add(PR, sel if sel.size < len(bits) else None, b)
            bits >>= 1
            b += 1
    return G


def _overlap_equal(a: Any, b: Any) -> bool:
    if a.shape != b.shape:
        return False
    if sp.issparse(a) or sp.issparse(b):
        diff = sp.csr_array(a) - sp.csr_array(b)
        return bool(diff.count_nonzero() == 0)
    return bool(np.array_equal(a, b))
