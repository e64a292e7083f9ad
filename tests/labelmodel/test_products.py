"""The confusion EM's two ways to compute its products (sparse over the votes, or through
sub-pattern tables of blocks of LFs) give the same fit; the cheaper one is chosen."""

from __future__ import annotations

import numpy as np
import pytest

from labelmodel import LabelModel, stats_from_matrix
from labelmodel._products import BlockProducts, SparseProducts, blocks_for, pattern_products, vote_products
from labelmodel._votes import VoteTable
from labelmodel.confusion import confusion_em

from .synthetic import sample_symmetric

EM = dict(prior_strength=2.0, prior_accuracy=0.7, class_shrink=0.0, pooling=1.0, max_iter=500, tol=1e-10)


def few_lfs(n: int, m: int, k: int, seed: int) -> np.ndarray:
    """Few LFs voting on most rows (the shape where blocks pay): coverage 0.3-0.9."""
    rng = np.random.default_rng(seed)
    L, _ = sample_symmetric(n, rng.uniform(0.55, 0.9, m), rng.uniform(0.3, 0.9, m),
                            rng.dirichlet(np.full(k, 5.0)), seed=seed)
    return L


def blocks_of(vt: VoteTable) -> BlockProducts:
    P = np.full((vt.n_rows, vt.n_lfs), -1, dtype=np.int64)
    P[vt.row, vt.lf] = vt.cls
    return BlockProducts(P, vt.row_weight, vt.k, blocks_for(vt.n_rows, vt.n_lfs, vt.k))


@pytest.mark.parametrize("m,k", [(10, 2), (7, 3), (5, 4)])
def test_block_products_fit_what_sparse_products_fit(m, k):
    stats = stats_from_matrix(few_lfs(20_000, m, k, seed=m), k)
    vt = VoteTable.from_stats(stats)
    block = pattern_products(stats.patterns, stats.counts, k)
    assert isinstance(block, BlockProducts) and block.n_blocks >= 2
    a = confusion_em(block, **EM)
    b = confusion_em(SparseProducts(vt), **EM)
    assert a["converged"] and b["converged"]
    np.testing.assert_allclose(a["log_conf"], b["log_conf"], atol=1e-8)
    np.testing.assert_allclose(a["log_prior"], b["log_prior"], atol=1e-10)
    np.testing.assert_allclose(a["posterior"], b["posterior"], atol=1e-8)
    np.testing.assert_allclose(a["unit_counts"], b["unit_counts"])
    np.testing.assert_allclose(a["unit_counts"].sum(axis=1), stats.lf_coverage)


def test_rows_in_any_order_and_extreme_scores():
    """Raw rows (unsorted, so every block's rows are reordered for its histogram), and
    scores too large for the product of the blocks' exponentials (the exp path)."""
    L = few_lfs(3000, 6, 2, seed=3)
    vt = VoteTable.from_matrix(L, 2)
    block, sparse = blocks_of(vt), SparseProducts(vt)
    assert all(o is not None for o in block.order)
    rng = np.random.default_rng(0)
    for scale in (1.0, 300.0):  # 6 LFs x 300 nats: past what exp can hold
        log_conf = -scale * rng.random((6, 2, 2))
        log_pi = np.log(np.array([0.3, 0.7]))
        pb = block.posterior(block.e_step(log_conf, log_pi))
        ps = sparse.posterior(sparse.e_step(log_conf, log_pi))
        np.testing.assert_allclose(pb, ps, atol=1e-12)
        Nb, nub = block.counts(block.e_step(log_conf, log_pi))
        Ns, nus = sparse.counts(sparse.e_step(log_conf, log_pi))
        np.testing.assert_allclose(Nb, Ns, rtol=1e-12)
        np.testing.assert_allclose(nub, nus, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(block.posterior(block.start()), sparse.posterior(sparse.start()))


def test_the_cheaper_products_are_chosen():
    few = VoteTable.from_stats(stats_from_matrix(few_lfs(20_000, 10, 2, seed=0), 2))
    assert isinstance(vote_products(few), BlockProducts)
    # crowd shape: 60 workers, 3 answers per item: blocks would read far more than the votes
    rng = np.random.default_rng(0)
    L = np.full((2000, 60), -1)
    for i in range(len(L)):
        L[i, rng.choice(60, 3, replace=False)] = rng.integers(0, 2, 3)
    assert isinstance(vote_products(VoteTable.from_stats(stats_from_matrix(L, 2))), SparseProducts)


def test_fit_from_stats_unchanged_by_the_block_products():
    L = few_lfs(50_000, 10, 2, seed=7)
    stats = stats_from_matrix(L, 2)
    lm = LabelModel(2).fit_from_stats(stats)
    assert lm.fit_info_["chosen"] == "confusion"
    ref = confusion_em(SparseProducts(VoteTable.from_stats(stats)), prior_strength=lm.config.confusion_prior_strength,
                       prior_accuracy=lm.config.confusion_prior_accuracy, class_shrink=lm.config.confusion_class_shrink,
                       pooling=lm.config.confusion_prior_pooling, max_iter=lm.config.max_iter, tol=lm.config.tol)
    np.testing.assert_allclose(lm.params_.train_log_prior, ref["log_prior"], atol=1e-9)
    probs = lm.predict_proba(L[:1000])
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(axis=1), 1.0)
