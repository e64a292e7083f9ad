"""Distinct rows of a label matrix, found through integer row keys.

Each vote ``v`` in ``{-1, 0..k-1}`` is a digit ``v + 1`` of ``b = bit_length(k)`` bits
(the smallest power-of-two base holding ``k + 1`` values); a row of ``m`` votes packs into
``ceil(m / g)`` int64 *words* of ``g = floor(62 / b)`` digits each, the first LF the most
significant digit. Rows are equal exactly when their words are, and the words of distinct
rows sort in the lexicographic order of the rows (``-1 < 0 < 1 ...``). Packing and
unpacking are shifts and masks. One word per row (``b * m <= 62``: 31 LFs x 2 or 3
classes, 15 LFs x 15 classes) makes deduplication a sort of a 1-D int64 array, or a
``bincount`` when ``2 ** (b * m)`` is small; more words are deduplicated by ``lexsort``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["row_words", "unique_words", "decode_words", "decode_rows", "sort_words", "digits_per_word", "digit_bits"]

_BINCOUNT_MAX = 1 << 22  # key spaces up to this size are counted by bincount, not sorted
_ROW_CHUNK = 1 << 16
_LEXSORT_MAX_WORDS = 8  # more words per row: rows are sorted as byte strings instead  # rows packed per block (keeps the int64 temporaries in cache)


def digit_bits(k: int) -> int:
    """Bits of one vote digit for cardinality ``k`` (``k + 1`` values)."""
    return max(1, int(k).bit_length())


def digits_per_word(k: int) -> int:
    """Votes packed into one int64 word for cardinality ``k`` (at least 1)."""
    return max(1, 62 // digit_bits(k))


def row_words(L: np.ndarray, k: int) -> np.ndarray:
    """Pack each row of ``L: [n, m]`` (votes in ``{-1..k-1}``) into int64 words, ``[n, W]``."""
    n, m = L.shape
    b = digit_bits(k)
    g = digits_per_word(k)
    n_words = max(1, -(-m // g))
    full = m // g if n_words > 1 else 0  # whole words packed for all rows at once
    out = np.empty((n, n_words), dtype=np.int64)
    step = min(max(n, 1), _ROW_CHUNK if not full else max(1, _ROW_CHUNK * 4 // n_words))
    key = np.empty(step, dtype=np.int64)
    col = np.empty(step, dtype=np.int64)
    for lo in range(0, n, step):
        Lc = L[lo:lo + step]
        nc = len(Lc)
        if full:
            # digit d of every whole word, for every row: one strided view [rows, words]
            A = Lc[:, : full * g].reshape(nc, full, g)
            acc = out[lo:lo + nc, :full]
            acc[:] = 0
            for d in range(g):
                acc <<= b
                acc |= A[:, :, d] + 1
        kc, cc = key[:nc], col[:nc]
        for w in range(full, n_words):
            cols = range(w * g, min(m, (w + 1) * g))
            kc[:] = 0
            for j in cols:
                kc <<= b
                cc[:] = Lc[:, j]
                cc += 1
                kc |= cc
            out[lo:lo + nc, w] = kc
    return out


def sort_words(words: np.ndarray) -> np.ndarray:
    """The order that sorts distinct rows ``words: [p, W]`` lexicographically (as lexsort)."""
    if words.shape[1] <= _LEXSORT_MAX_WORDS:
        return np.lexsort(words.T[::-1])
    raw = words.astype(">i8").view(np.dtype((np.void, 8 * words.shape[1]))).reshape(-1)
    return np.argsort(raw, kind="stable")


def decode_rows(words: np.ndarray, k: int, m: int) -> np.ndarray:
    """Inverse of :func:`row_words`: the votes of the ``p`` rows, ``[p, m]`` (int16 unless
    ``k`` needs int32)."""
    p, n_words = words.shape
    b = digit_bits(k)
    mask = (1 << b) - 1
    g = digits_per_word(k)
    out = np.empty((p, m), dtype=np.int16 if k < 32767 else np.int32)
    full = m // g if n_words > 1 else 0
    if full:
        view = out[:, : full * g].reshape(p, full, g)
        step = max(1, _ROW_CHUNK * 4 // full)  # row blocks whose temporaries stay in cache
        tmp_buf = np.empty((min(step, p), full), dtype=np.int64)
        for lo in range(0, p, step):
            hi = min(p, lo + step)
            tmp = tmp_buf[: hi - lo]
            for d in range(g):
                np.right_shift(words[lo:hi, :full], b * (g - 1 - d), out=tmp)
                tmp &= mask
                np.subtract(tmp, 1, out=view[lo:hi, :, d], casting="unsafe")
    tmp1 = np.empty(p, dtype=np.int64)
    for w in range(full, n_words):
        cols = list(range(w * g, min(m, (w + 1) * g)))
        for i, j in enumerate(reversed(cols)):
            np.right_shift(words[:, w], b * i, out=tmp1)
            tmp1 &= mask
            np.subtract(tmp1, 1, out=out[:, j], casting="unsafe")
    return out


def unique_words(words: np.ndarray, weights: np.ndarray | None, k: int, m: int,
                 ordered: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``words: [n, W]`` in increasing order, with their counts.

    Parameters
    ----------
    words : ndarray of int64, shape [n, W]
    weights : ndarray of int64, shape [n], optional
        Count of each row (summed per distinct row); ones when None.
    k, m : int
        Cardinality and number of LFs (to size a ``bincount`` over a small key space).

    ordered : bool
        ``False``: rows of more than ``_LEXSORT_MAX_WORDS`` words come in no particular
        order (found by hashing; :func:`sort_words` orders them later, once).

    Returns
    -------
    (ndarray [p, W] int64, ndarray [p] int64)
    """
    n, n_words = words.shape
    if n == 0:
        return words[:0], np.zeros(0, dtype=np.int64)
    if n_words == 1:
        keys = words[:, 0]
        bits = digit_bits(k) * m
        space = 1 << bits if bits < 40 else None
        if space is not None and space <= _BINCOUNT_MAX and space <= 8 * n:
            counts = np.bincount(keys, weights=weights, minlength=space)
            uniq = np.flatnonzero(counts)
            return uniq.astype(np.int64)[:, None], np.rint(counts[uniq]).astype(np.int64)
        if weights is None:
            s = np.sort(keys)
            new = np.empty(n, dtype=bool)
            new[0] = True
            np.not_equal(s[1:], s[:-1], out=new[1:])
            starts = np.flatnonzero(new)
            counts = np.diff(np.append(starts, n))
            return s[starts][:, None], counts.astype(np.int64)
        uniq, inv = np.unique(keys, return_inverse=True)
        counts = np.bincount(inv.reshape(-1), weights=weights, minlength=len(uniq))
        return uniq[:, None], np.rint(counts).astype(np.int64)
    if n_words > _LEXSORT_MAX_WORDS and not ordered:
        # one int64 hash per row (wrapping arithmetic), deduplicated by one sort; equal
        # hashes of different rows are checked for and fall back to the byte-string sort
        mult = np.random.default_rng(0).integers(1, 2**62, n_words, dtype=np.int64) | 1
        with np.errstate(over="ignore"):
            h = words @ mult
        _, first, inv = np.unique(h, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        if np.array_equal(words, words[first][inv]):
            counts = np.bincount(inv, weights=weights, minlength=len(first))
            return words[first], np.rint(counts).astype(np.int64)
    if n_words > _LEXSORT_MAX_WORDS:
        # Many words: one sort of the rows as byte strings. Big-endian bytes of non-negative
        # words compare (memcmp) in the same order as the words, so this is lexsort's order.
        raw = words.astype(">i8").view(np.dtype((np.void, 8 * n_words))).reshape(-1)
        _, first, inv = np.unique(raw, return_index=True, return_inverse=True)
        counts = np.bincount(inv.reshape(-1), weights=weights, minlength=len(first))
        return words[first], np.rint(counts).astype(np.int64)
    order = np.lexsort(words.T[::-1])  # the first word is the primary key
    s = words[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(s[1:] != s[:-1], axis=1)
    group = np.cumsum(new) - 1
    w = None if weights is None else np.asarray(weights)[order]
    counts = np.bincount(group, weights=w, minlength=int(group[-1]) + 1)
    return s[new], np.rint(counts).astype(np.int64)


def decode_words(words: np.ndarray, k: int, m: int) -> np.ndarray:
    """Inverse of :func:`row_words`, LF-major: the votes of the ``p`` rows as int16 ``[m, p]``
    (the transpose of :func:`decode_rows`; per-row reductions over LFs are fast on this layout)."""
    p = words.shape[0]
    if words.shape[1] > 1:
        return np.ascontiguousarray(decode_rows(words, k, m).T)
    b = digit_bits(k)
    mask = (1 << b) - 1
    out = np.empty((m, p), dtype=np.int16 if k < 32767 else np.int32)  # LF-major: contiguous writes
    tmp = np.empty(p, dtype=np.int64)
    key = words[:, 0]
    for i, j in enumerate(reversed(range(m))):
        np.right_shift(key, b * i, out=tmp)
        tmp &= mask
        np.subtract(tmp, 1, out=out[j], casting="unsafe")
    return out
