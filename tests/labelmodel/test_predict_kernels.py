"""The prediction kernels against a brute-force softmax, on the few- and many-class paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from labelmodel._votes import bump_proba, table_proba


def _brute_bump(L, log_prior, W):
    S = np.tile(log_prior, (len(L), 1))
    for i, row in enumerate(L):
        for j, v in enumerate(row):
            if v >= 0:
                S[i, v] += W[j, v]
    return np.exp(S - logsumexp(S, axis=1, keepdims=True))


@pytest.mark.parametrize("k,m", [(3, 6), (40, 7), (1461, 15)])
def test_bump_proba_equals_softmax_of_prior_plus_weights(k, m):
    rng = np.random.default_rng(k)
    L = np.where(rng.random((300, m)) < 0.6, -1, rng.integers(0, k, (300, m))).astype(np.int16)
    L[:5] = -1  # unvoted rows get the prior
    prior = rng.dirichlet(np.ones(k))
    log_prior = np.log(prior)
    W = rng.normal(0, 3, (m, k))
    got = bump_proba(L, log_prior, W)
    np.testing.assert_allclose(got, _brute_bump(L, log_prior, W), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(got[:5], np.tile(prior, (5, 1)), rtol=1e-12)


def test_table_proba_equals_softmax_of_log_table():
    rng = np.random.default_rng(2)
    k, m = 4, 5
    L = np.where(rng.random((200, m)) < 0.5, -1, rng.integers(0, k, (200, m)))
    T = rng.dirichlet(np.ones(k + 1), size=(m, k)).transpose(0, 2, 1)  # [m, k+1, k], columns sum to 1
    log_prior = np.log(rng.dirichlet(np.ones(k)))
    S = log_prior + sum(np.log(T[j, L[:, j] + 1, :]) for j in range(m))
    np.testing.assert_allclose(table_proba(L, log_prior, np.log(T)), np.exp(S - logsumexp(S, axis=1, keepdims=True)), rtol=1e-10)


def test_large_results_in_ordinary_pages_are_the_same_and_restore_numpy_hint(monkeypatch):
    """Above the size threshold the result is allocated without numpy's huge-page hint;
    the probabilities do not change and numpy's setting is left as it was."""
    from labelmodel import _votes

    rng = np.random.default_rng(5)
    k, m = 40, 7
    L = np.where(rng.random((300, m)) < 0.6, -1, rng.integers(0, k, (300, m))).astype(np.int16)
    log_prior = np.log(rng.dirichlet(np.ones(k)))
    W = rng.normal(0, 3, (m, k))
    T = np.log(rng.dirichlet(np.ones(k + 1), size=(m, k)).transpose(0, 2, 1))
    before_bump, before_table = bump_proba(L, log_prior, W), table_proba(L, log_prior, T)
    monkeypatch.setattr(_votes, "_PLAIN_PAGES_BYTES", 0)
    assert _votes._set_madvise_hugepage is not None  # numpy >= 1.26 has the switch
    hint = _votes._set_madvise_hugepage(True)
    try:
        np.testing.assert_array_equal(bump_proba(L, log_prior, W), before_bump)
        np.testing.assert_array_equal(table_proba(L, log_prior, T), before_table)
        assert _votes._set_madvise_hugepage(True) is True  # still on after the calls
    finally:
        _votes._set_madvise_hugepage(hint)
