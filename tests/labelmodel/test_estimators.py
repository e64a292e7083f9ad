"""The estimators behind LabelModel: patterns vs rows, moments, majority, selection, scale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelmodel import (
    ABSTAIN,
    DawidSkene,
    LabelModel,
    MajorityLabelVoter,
    MomentEstimator,
    WeightedMajorityVoter,
    expected_accuracy,
    stats_from_matrix,
)

from .synthetic import sample_symmetric, sample_unipolar

ACC = np.array([0.9, 0.85, 0.8, 0.75, 0.7, 0.65])
COV = np.array([0.4, 0.5, 0.3, 0.6, 0.5, 0.4])


@pytest.mark.parametrize("parameterization", ["precision", "full"])
def test_em_over_patterns_equals_em_over_rows(parameterization):
    L, _ = sample_symmetric(3000, ACC, COV, np.array([0.6, 0.4]), seed=0)
    kw = dict(parameterization=parameterization, merge_duplicates=False)
    patterns = DawidSkene(2, **kw).fit(L)
    rows = DawidSkene(2, **kw).fit(L, aggregate=False)
    assert patterns.fit_info_["n_patterns"] if parameterization == "precision" else True
    assert patterns.fit_info_["n_iter"] == rows.fit_info_["n_iter"]
    np.testing.assert_allclose(patterns.predict_proba(L), rows.predict_proba(L), rtol=0, atol=1e-10)
    np.testing.assert_allclose(patterns.estimated_accuracies(), rows.estimated_accuracies(), atol=1e-10)


def test_moments_without_patterns_agree_with_em():
    L, y = sample_symmetric(20000, ACC, COV, np.array([0.5, 0.5]), seed=1)
    full = stats_from_matrix(L, 2)
    no_patterns = stats_from_matrix(L, 2, max_patterns=10)
    assert no_patterns.patterns is None
    # LFs that vote both classes take the confusion route in "auto"; the precision EM is
    # the model the moment estimator approximates
    em = LabelModel(2, method="dawid_skene").fit_from_stats(full)
    mom = LabelModel(2).fit_from_stats(no_patterns)
    assert LabelModel(2).fit_from_stats(full).fit_info_["chosen"] == "confusion"
    assert mom.fit_info_["chosen"] == "moments"
    # pairwise composite likelihood: rows with 3+ votes are approximated by their pairs
    assert np.abs(mom.estimated_accuracies() - em.estimated_accuracies()).max() < 0.03
    assert abs(expected_accuracy(mom.predict_proba(L), y) - expected_accuracy(em.predict_proba(L), y)) < 0.01
    with pytest.raises(ValueError, match="method='dawid_skene' needs the vote-pattern table"):
        LabelModel(2, method="dawid_skene").fit_from_stats(no_patterns)


def test_moments_with_too_few_lfs_falls_back_or_says_why():
    L, _ = sample_symmetric(2000, ACC[:2], COV[:2], np.array([0.5, 0.5]), seed=2)
    L = np.concatenate([L, np.full((len(L), 1), ABSTAIN)], axis=1)  # a third LF that never votes
    stats = stats_from_matrix(L, 2, lf_names=["a", "b", "silent"])
    with pytest.raises(ValueError, match=r"needs at least 3 LFs that vote .*; 2 vote \(a, b\); add LFs"):
        MomentEstimator(2).fit_from_stats(stats)
    with pytest.raises(ValueError, match="needs at least 3 LFs"):
        LabelModel(2, method="moments").fit_from_stats(stats)
    auto = LabelModel(2).fit_from_stats(stats)
    assert auto.fit_info_["chosen"] == "majority"
    assert "needs at least 3 LFs" in auto.fit_info_["fallback_reason"]
    mv = MajorityLabelVoter(2).fit_from_stats(stats)
    assert np.array_equal(auto.predict_proba(L), mv.predict_proba(L))


def test_moments_need_overlapping_votes():
    L = np.full((30, 3), ABSTAIN)
    L[0:10, 0], L[10:20, 1], L[20:30, 2] = 0, 1, 0
    with pytest.raises(ValueError, match="no two LFs ever vote on the same row"):
        MomentEstimator(2).fit(L)


def test_majority_label_voter_semantics():
    L = np.array([[0, 0, 1], [0, 1, -1], [-1, -1, -1], [2, -1, -1]])
    unfitted = MajorityLabelVoter(3)  # as in Snorkel, no fit needed
    # the all-abstain row stays unlabeled unless label_unvoted asks for the prior's class
    assert unfitted.predict(L, tie_break_policy="first").tolist() == [0, 0, ABSTAIN, 2]
    assert unfitted.predict(L, tie_break_policy="first", label_unvoted=True).tolist() == [0, 0, 0, 2]
    mv = MajorityLabelVoter(3).fit(L)
    np.testing.assert_allclose(
        mv.predict_proba(L), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 1]]
    )
    assert mv.predict(L).tolist() == [0, ABSTAIN, ABSTAIN, 2]
    given = MajorityLabelVoter(3).fit(L, class_balance=[0.6, 0.3, 0.1])
    np.testing.assert_allclose(given.predict_proba(L[2:3])[0], [0.6, 0.3, 0.1])
    # agreement with the majority-vote posterior (votes split): LF 0 = (2/3 + 1/2 + 1) / 3
    np.testing.assert_allclose(mv.estimated_accuracies()[:2], [13 / 18, 7 / 12])


def test_weighted_majority_downweights_a_noisy_lf():
    acc = np.array([0.9, 0.9, 0.9, 0.55])
    L, y = sample_symmetric(10000, acc, np.full(4, 0.6), np.array([0.5, 0.5]), seed=3)
    wmv = WeightedMajorityVoter(2).fit(L)
    w = wmv.params_.weights[np.arange(4), 0]
    assert w[3] < w[:3].min()
    assert expected_accuracy(wmv.predict_proba(L), y) >= expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L), y)


def test_dev_labels_enter_em_only_when_cross_fitting_shows_a_gain():
    rng = np.random.default_rng(4)
    lf_class = np.repeat(np.arange(2), 5)
    L, y = sample_unipolar(6000, lf_class, rng.uniform(0.1, 0.4, 10), rng.uniform(0.01, 0.08, 10), np.array([0.8, 0.2]), seed=4)
    L_dev, Y_dev = L[:300], y[:300]
    lm = LabelModel(2).fit(L[300:], Y_dev=Y_dev, L_dev=L_dev)
    info = lm.fit_info_
    assert info["chosen"] == "dawid_skene" and info["dev_rows"] == 300
    assert info["dev_use"] == "labeled rows in EM" or info["dev_use"].startswith(("unused (cross-fitted gain", "unused (the dev labels change no"))
    assert "dev_accuracy_gain" in info and "dev_accuracy_gain_se" in info
    # Y_dev alone (no L_dev) sets the class balance, as in Snorkel
    expected = (np.bincount(Y_dev, minlength=2) + 1) / (len(Y_dev) + 2)
    only_balance = LabelModel(2).fit(L[300:], Y_dev=Y_dev)
    np.testing.assert_allclose(only_balance.class_balance_, expected)
    assert "dev_use" not in only_balance.fit_info_


def test_thousand_classes_two_thousand_lfs_fit_from_sparse_stats():
    # Scale smoke test (small n): the overlap is sparse and nothing of size m*k*k is built.
    rng = np.random.default_rng(5)
    n, m, k = 3000, 2000, 1000
    y = rng.integers(0, k, n)
    lf_class = rng.integers(0, k, m)
    fire = ((y[:, None] == lf_class[None, :]) & (rng.random((n, m)) < 0.6)) | (rng.random((n, m)) < 0.0005)
    L = np.where(fire, lf_class[None, :], ABSTAIN).astype(np.int16)
    stats = stats_from_matrix(L, k)
    assert not isinstance(stats.overlap, np.ndarray)
    lm = LabelModel(k).fit_from_stats(stats)
    p = lm.predict_proba(L)
    assert p.shape == (n, k) and np.isfinite(p).all()
    assert expected_accuracy(p, y) > 0.5
    mom = LabelModel(k).fit_from_stats(stats_from_matrix(L, k, max_patterns=10))
    assert mom.fit_info_["chosen"] == "moments" and np.isfinite(mom.predict_proba(L[:100])).all()
    with pytest.raises(MemoryError, match="read precision/vote_rate instead"):
        lm.confusion_


def test_full_parameterization_refuses_huge_tables():
    L = np.full((50, 3000), ABSTAIN)
    L[np.arange(3000) % 50, np.arange(3000)] = np.arange(3000) % 100
    with pytest.raises(ValueError, match="use parameterization='precision'"):
        DawidSkene(100, parameterization="full", merge_duplicates=False).fit(L)


def test_package_imports_neither_pyspark_nor_torch():
    code = (
        "import sys, labelmodel\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pyspark', 'torch')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
    src = Path(__file__).resolve().parents[2] / "labelmodel"
    files = list(src.glob("*.py"))
    assert files
    for f in files:
        text = f.read_text()
        assert "import pyspark" not in text and "from pyspark" not in text, f
        assert "import torch" not in text and "from torch" not in text, f


def test_synthetic_validation_harness_runs():
    from labelmodel.validation import compare, report

    res = compare(n_scenarios=2, n_rows=600, seed=0)
    assert set(res) == {"majority", "weighted_majority", "dawid_skene_full", "moments", "LabelModel", "oracle"}
    assert all(len(v) == 2 and np.isfinite(v).all() for v in res.values())
    assert "LabelModel" in report(res)


def test_accelerated_em_reaches_the_plain_em_fixed_point():
    from labelmodel._votes import VoteTable
    from labelmodel.dawid_skene import precision_em

    L, _ = sample_symmetric(4000, ACC, COV, np.array([0.7, 0.3]), seed=3)
    vt = VoteTable.from_matrix(L, 2)
    kw = dict(prior_strength=0.025 * len(L), prior_precision=0.8, class_smoothing=1.0, class_evidence_floor=0.5)
    plain = precision_em(vt, max_iter=5000, tol=1e-13, n_steps=5000, **kw)  # n_steps: no acceleration
    fast = precision_em(vt, max_iter=500, tol=1e-6, **kw)
    assert fast["converged"] and fast["n_iter"] < plain["n_iter"]
    np.testing.assert_allclose(fast["precision"], plain["precision"], atol=1e-6)
    np.testing.assert_allclose(fast["log_prior"], plain["log_prior"], atol=1e-6)


def test_many_patterns_take_the_cheaper_of_em_and_moments(monkeypatch):
    # Past EM_MAX_PATTERNS distinct patterns, "auto" fits from whichever summary is
    # smaller: the patterns' votes (EM) or the co-voting (LF, class) pairs (moments).
    from labelmodel import model as model_mod
    from labelmodel.moments import covoting_pairs, pattern_votes

    L, y = sample_symmetric(6000, ACC, COV, np.array([0.5, 0.5]), seed=11)
    stats = stats_from_matrix(L, 2)
    assert pattern_votes(stats) > covoting_pairs(stats)  # 6 LFs x 2 classes: few pairs
    assert LabelModel(2).fit_from_stats(stats).fit_info_["chosen"] == "confusion"
    monkeypatch.setattr(model_mod, "EM_MAX_PATTERNS", len(stats.patterns) - 1)
    lm = LabelModel(2).fit_from_stats(stats)
    assert lm.fit_info_["chosen"] == "moments"
    no_patterns = LabelModel(2).fit_from_stats(stats_from_matrix(L, 2, max_patterns=10))
    np.testing.assert_allclose(lm.predict_proba(L), no_patterns.predict_proba(L), atol=1e-12)
    # many classes: more co-voting pairs than pattern votes, so EM over patterns stays
    rng = np.random.default_rng(3)
    yk = rng.integers(0, 200, 600)
    Lk = np.where(rng.random((600, 8)) < 0.7, yk[:, None], rng.integers(0, 200, (600, 8)))
    big = stats_from_matrix(Lk, 200)
    assert pattern_votes(big) <= covoting_pairs(big)
    monkeypatch.setattr(model_mod, "EM_MAX_PATTERNS", 10)
    assert LabelModel(200).fit_from_stats(big).fit_info_["chosen"] == "confusion"


def test_duplicate_lfs_found_from_patterns_as_from_overlap():
    from labelmodel._votes import _duplicate_columns, duplicate_groups

    rng = np.random.default_rng(4)
    L = rng.integers(-1, 3, (300, 10))
    L[:, 4] = L[:, 1]
    L[:, 8] = L[:, 1]
    L[:, 6] = L[:, 0]
    L[:, [2, 9]] = -1  # silent LFs are never duplicates
    stats = stats_from_matrix(L, 3)
    rep = duplicate_groups(stats)
    assert rep.tolist() == [0, 1, 2, 3, 1, 5, 0, 7, 1, 9]
    assert np.array_equal(_duplicate_columns(stats.patterns, np.asarray(stats.lf_coverage)), rep)


def test_dev_labels_that_change_no_prediction_are_declined_and_the_reason_says_so():
    rng = np.random.default_rng(0)
    y, y_dev = rng.integers(0, 2, 2000), rng.integers(0, 2, 100)
    # three LFs right 80% of the time, every row covered: every fit, with or without labels, votes the majority
    L = np.where(rng.random((2000, 3)) < 0.8, y[:, None], 1 - y[:, None])
    L_dev = np.where(rng.random((100, 3)) < 0.8, y_dev[:, None], 1 - y_dev[:, None])
    info = LabelModel(2).fit(L, Y_dev=y_dev, L_dev=L_dev).fit_info_
    assert info["dev_use"] == "unused (the dev labels change no cross-fitted prediction on the 100 dev rows)"
    assert info["dev_accuracy_gain"] == 0.0
