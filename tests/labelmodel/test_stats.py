"""stats_from_matrix against brute force (dense and sparse overlap), npz round trip."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labelmodel import SufficientStats, stats_from_matrix
from labelmodel import stats as stats_mod


def _brute_overlap(L: np.ndarray, k: int) -> np.ndarray:
    n, m = L.shape
    ind = np.zeros((n, m * k))
    r, c = np.nonzero(L != -1)
    ind[r, c * k + L[r, c]] = 1
    return (ind.T @ ind).astype(np.int64)


def test_matches_brute_force():
    rng = np.random.default_rng(0)
    L = np.where(rng.random((500, 6)) < 0.6, -1, rng.integers(0, 3, (500, 6)))
    s = stats_from_matrix(L, 3)
    assert isinstance(s.overlap, np.ndarray)
    assert np.array_equal(s.overlap, _brute_overlap(L, 3))
    uniq, cnt = np.unique(L, axis=0, return_counts=True)
    assert np.array_equal(s.patterns, uniq) and np.array_equal(s.counts, cnt)
    assert s.counts.sum() == 500
    voted = L != -1
    assert s.n_covered == int(voted.any(axis=1).sum())
    assert np.array_equal(s.lf_coverage, voted.sum(axis=0))


def test_sparse_overlap_above_limit_and_npz_round_trip(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    L = np.where(rng.random((300, 5)) < 0.7, -1, rng.integers(0, 4, (300, 5)))
    dense = stats_from_matrix(L, 4)
    monkeypatch.setattr(stats_mod, "DENSE_OVERLAP_MAX_COLS", 8)
    sparse = stats_from_matrix(L, 4)
    # a sparse overlap is computed from the patterns on first use (EM over patterns never reads it)
    assert not sparse.overlap_computed
    assert np.array_equal(sparse.class_vote_counts(), dense.class_vote_counts())
    assert not sparse.overlap_computed
    assert sp.issparse(sparse.overlap) and sparse.overlap_computed
    assert np.array_equal(sparse.overlap.toarray(), dense.overlap)
    assert sparse.equals(dense) and dense.equals(sparse)
    assert np.array_equal(sparse.class_vote_counts(), dense.class_vote_counts())
    for s in (dense, sparse):
        path = tmp_path / "s.npz"
        s.to_npz(str(path))
        back = SufficientStats.from_npz(str(path))
        assert back.equals(s) and sp.issparse(back.overlap) == sp.issparse(s.overlap)


def test_pattern_limit_and_edge_shapes():
    L = np.array([[0, -1], [1, 1], [0, -1]])
    assert stats_from_matrix(L, 2, max_patterns=1).patterns is None
    empty = stats_from_matrix(np.zeros((0, 3), dtype=int), 2)
    assert empty.n_rows == 0 and empty.patterns.shape == (0, 3)


def test_chunked_stats_equal_one_chunk(monkeypatch):
    rng = np.random.default_rng(5)
    L = np.where(rng.random((700, 6)) < 0.6, -1, rng.integers(0, 3, (700, 6))).astype(np.int8)
    w = rng.integers(0, 4, 700)
    for kw in ({}, {"weights": w}, {"max_patterns": 50}):
        whole = stats_from_matrix(L, 3, **kw)
        monkeypatch.setattr(stats_mod, "_STATS_CHUNK_CELLS", 60)  # 10 rows per chunk
        chunked = stats_from_matrix(L, 3, **kw)
        monkeypatch.undo()
        assert chunked.equals(whole), kw
    assert stats_from_matrix(L, 3, max_patterns=50).patterns is None


def test_check_label_matrix_keeps_small_signed_dtypes():
    L8 = np.array([[0, -1], [2, 1]], dtype=np.int8)
    assert stats_mod.check_label_matrix(L8, 3) is L8  # no int64 copy
    assert stats_mod.check_label_matrix(L8.astype(np.float32), 3).dtype == np.int8
    assert stats_mod.check_label_matrix(np.array([[0, 1]], dtype=np.uint8), 300).dtype == np.int16
    with pytest.raises(ValueError, match="L holds 255, outside the label space"):
        stats_mod.check_label_matrix(np.array([[0, 255]], dtype=np.uint8), 3)


@pytest.mark.parametrize("m,k", [(6, 3), (40, 30), (70, 2)])
def test_row_keys_of_one_or_many_words_match_brute_force(m, k):
    # (6, 3): one int64 word per row, counted by bincount; (40, 30): 4 words per row and a
    # sparse one-hot product (m*k > 1024); (70, 2): 2 words of 39 and 31 ternary digits
    rng = np.random.default_rng(m + k)
    base = np.where(rng.random((60, m)) < 0.7, -1, rng.integers(0, k, (60, m)))
    L = base[rng.integers(0, 60, 400)]  # repeated rows
    L[:, -1] = np.where(rng.random(400) < 0.5, -1, k - 1)  # extreme digits in the last word
    s = stats_from_matrix(L.astype(np.int16), k)
    uniq, cnt = np.unique(L, axis=0, return_counts=True)
    assert np.array_equal(s.patterns, uniq) and np.array_equal(s.counts, cnt)
    O = s.overlap_dense()
    assert np.array_equal(O, _brute_overlap(L, k))
    voted = L != -1
    nv = voted.sum(axis=1)
    conflict = np.array([len(set(r[r != -1])) > 1 for r in L])
    assert np.array_equal(s.lf_overlap, (voted & (nv >= 2)[:, None]).sum(axis=0))
    assert np.array_equal(s.lf_conflict, (voted & conflict[:, None]).sum(axis=0))
    assert (s.n_covered, s.n_overlapped, s.n_conflicted) == ((nv >= 1).sum(), (nv >= 2).sum(), conflict.sum())


def test_sparse_overlap_accumulated_when_the_pattern_table_is_dropped(monkeypatch):
    rng = np.random.default_rng(8)
    L = np.where(rng.random((900, 6)) < 0.5, -1, rng.integers(0, 3, (900, 6)))
    dense = stats_from_matrix(L, 3)
    monkeypatch.setattr(stats_mod, "DENSE_OVERLAP_MAX_COLS", 4)
    monkeypatch.setattr(stats_mod, "_STATS_CHUNK_CELLS", 600)  # 100 rows per chunk
    for cap in (5, 150, 10_000):  # dropped in the first chunks, at the end, kept
        s = stats_from_matrix(L, 3, max_patterns=cap)
        assert (s.patterns is None) == (cap < len(dense.patterns))
        assert s.overlap_computed == (s.patterns is None)
        assert np.array_equal(s.overlap.toarray(), dense.overlap)
        assert np.array_equal(s.lf_conflict, dense.lf_conflict) and s.n_conflicted == dense.n_conflicted


@pytest.mark.parametrize("m,k", [(400, 3), (60, 1000)])
def test_rows_of_many_words_sort_as_lexsort(m, k, monkeypatch):
    from labelmodel import _patterns

    rng = np.random.default_rng(m)
    L = np.where(rng.random((400, m)) < 0.8, -1, rng.integers(0, k, (400, m)))
    L = np.concatenate([L, L[:100]])
    words = _patterns.row_words(L, k)
    assert words.shape[1] > _patterns._LEXSORT_MAX_WORDS
    by_bytes = _patterns.unique_words(words, None, k, m)
    monkeypatch.setattr(_patterns, "_LEXSORT_MAX_WORDS", 10**9)
    by_lexsort = _patterns.unique_words(words, None, k, m)
    assert all(np.array_equal(a, b) for a, b in zip(by_bytes, by_lexsort))
    assert np.array_equal(_patterns.decode_words(by_bytes[0], k, m).T, np.unique(L, axis=0))


@pytest.mark.parametrize("m,k", [(400, 3), (2000, 1000)])
def test_many_lf_patterns_hashed_per_chunk_come_out_sorted(m, k, monkeypatch):
    rng = np.random.default_rng(k)
    L = np.where(rng.random((1500, m)) < 0.97, -1, rng.integers(0, k, (1500, m)))
    L = np.concatenate([L, L[:300]])
    uniq, cnt = np.unique(L, axis=0, return_counts=True)
    for cells in (1 << 25, 200 * m):  # one chunk; chunks of 200 rows merged by hash
        monkeypatch.setattr(stats_mod, "_STATS_CHUNK_CELLS", cells)
        s = stats_from_matrix(L, k)
        assert np.array_equal(s.patterns, uniq) and np.array_equal(s.counts, cnt)
        voted = L != -1
        assert np.array_equal(s.lf_coverage, voted.sum(axis=0)) and s.n_covered == int(voted.any(axis=1).sum())


@pytest.mark.parametrize("k,m", [(2, 7), (3, 20), (5, 9), (200, 3)])
def test_weighted_gram_from_keys_or_votes_equals_brute_force(k, m, monkeypatch):
    """The Gram product in many small blocks, from one-word keys and from decoded votes, with
    repeated rows (weights up to 1000, several bits) and zero weights: X.T diag(w) X exactly."""
    from labelmodel._patterns import decode_words, row_words

    monkeypatch.setattr(stats_mod, "_GRAM_CHUNK_CELLS", 64)
    monkeypatch.setattr(stats_mod, "_GRAM_MIN_ROWS", 7)
    rng = np.random.default_rng(k * m)
    L = np.where(rng.random((300, m)) < 0.5, -1, rng.integers(0, k, (300, m))).astype(np.int8 if k < 128 else np.int16)
    w = rng.integers(1, 4, 300)
    w[::17] = rng.integers(100, 1000, len(w[::17]))
    w[::29] = 0
    n_votes = (L != -1).sum(axis=1)
    classes = np.array([len(set(r[r != -1])) for r in L])
    X = np.zeros((300, m * k + 3))
    r, c = np.nonzero(L != -1)
    X[r, c * k + L[r, c]] = 1
    X[:, m * k:] = np.stack([n_votes >= 1, n_votes >= 2, classes >= 2], axis=1)
    want = np.rint(X.T @ (w[:, None] * X)).astype(np.int64)
    keys = row_words(L, k)
    assert keys.shape[1] == 1
    assert np.array_equal(stats_mod._weighted_gram(keys[:, 0], w, k, m), want)
    assert np.array_equal(stats_mod._weighted_gram(decode_words(keys, k, m), w, k), want)
    # stats_from_matrix takes the key path for these shapes: every count as from the rows
    s = stats_from_matrix(L, k)
    assert np.array_equal(s.overlap, _brute_overlap(L, k))
    assert s.n_conflicted == int((classes >= 2).sum())
