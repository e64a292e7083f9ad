"""``abstain_evidence``: the precision model's own ``P(LF j abstains | y)`` used at prediction
(issue 8, session 6).

Class-0 LFs cover most class-0 rows, class-1 LFs few class-1 rows, so the rows no LF votes
on are mostly class 1. The default treats abstaining as uninformative and gives those rows
the uniform prior; with ``abstain_evidence=True`` they lean toward the class the LFs cover
least, and every row is scored by the naive-Bayes table the fitted model implies. EM itself
is the same fit either way.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from labelmodel import LabelModel
from labelmodel import abstain
from labelmodel.model import expected_accuracy

from .synthetic import sample_unipolar

LF_CLASS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
HIT = np.array([0.5, 0.45, 0.5, 0.4, 0.08, 0.1, 0.06, 0.08])
FALSE = np.full(8, 0.01)


@pytest.fixture(scope="module")
def uneven():
    L, y = sample_unipolar(3000, LF_CLASS, HIT, FALSE, np.array([0.5, 0.5]), seed=0)
    L_test, y_test = sample_unipolar(3000, LF_CLASS, HIT, FALSE, np.array([0.5, 0.5]), seed=100)
    return L, y, L_test, y_test


def test_unvoted_rows_lean_to_the_class_the_lfs_cover_least(uneven):
    L, _, L_test, y_test = uneven
    unvoted = (L_test == -1).all(axis=1)
    assert unvoted.mean() > 0.3 and (y_test[unvoted] == 1).mean() > 0.85  # the shape
    default = LabelModel(2).fit(L)
    abst = LabelModel(2, abstain_evidence=True).fit(L)
    assert abst.fit_info_["chosen"] == "dawid_skene" and abst.fit_info_["abstain_evidence"] is True
    np.testing.assert_allclose(default.predict_proba(L_test[unvoted]), 0.5)  # uniform: a tie
    p_abst = abst.predict_proba(L_test[unvoted])
    assert (p_abst[:, 1] > 0.5).all()
    assert expected_accuracy(p_abst, y_test[unvoted]) > 0.85
    assert expected_accuracy(abst.predict_proba(L_test), y_test) > \
        expected_accuracy(default.predict_proba(L_test), y_test) + 0.1


def test_it_is_the_naive_bayes_table_of_the_same_fit(uneven):
    L, _, L_test, _ = uneven
    default = LabelModel(2).fit(L)
    abst = LabelModel(2, abstain_evidence=True).fit(L)
    # EM is not refitted: same precisions
    np.testing.assert_allclose(abst.estimated_accuracies(), default.estimated_accuracies())
    lp, lt = abst.params_.log_prior, abst.params_.log_table
    m = L.shape[1]
    S = lp + lt[np.arange(m)[None, :], L_test + 1, :].sum(axis=1)
    np.testing.assert_allclose(abst.predict_proba(L_test), np.exp(S - logsumexp(S, axis=1, keepdims=True)),
                               atol=1e-10)
    # a vote's own log-odds (without the abstains) are the default model's lone-vote log-odds
    d = default.params_
    for j, v in [(0, 0), (4, 1)]:
        table_odds = (lp[v] + lt[j, v + 1, v]) - (lp[1 - v] + lt[j, v + 1, 1 - v])
        default_odds = d.train_log_prior[v] + d.weights[j, v] - d.train_log_prior[1 - v]
        assert table_odds == pytest.approx(default_odds, abs=1e-9)
    # EM's balance is the covered rows' (mostly class 0 here); the population balance the
    # LFs' overlaps imply is nearer the true 50/50
    est = abst.fit_info_["estimated_class_balance"][0]
    pop = abst.fit_info_["population_class_balance"][0]
    assert abs(pop - 0.5) < abs(est - 0.5) - 0.05, (pop, est)


def test_known_balance_and_the_moment_estimator(uneven):
    L, _, L_test, _ = uneven
    known = LabelModel(2, abstain_evidence=True).fit(L, class_balance=[0.5, 0.5])
    np.testing.assert_allclose(known.fit_info_["population_class_balance"], [0.5, 0.5])
    unvoted = (L_test == -1).all(axis=1)
    assert (known.predict_proba(L_test[unvoted])[:, 1] > 0.5).all()
    # the moment estimator (no pattern table) builds the same table from its estimates
    mom = LabelModel(2, abstain_evidence=True, method="moments").fit(L)
    assert mom.params_.kind == "table" and mom.fit_info_["abstain_evidence"] is True
    np.testing.assert_allclose(mom.predict_proba(L_test).sum(axis=1), 1.0)


def test_explain_and_save_load_agree_with_predict(uneven, tmp_path):
    L, _, L_test, _ = uneven
    abst = LabelModel(2, abstain_evidence=True).fit(L)
    row = L_test[np.flatnonzero((L_test != -1).sum(axis=1) == 2)[0]]
    e = abst.explain(row)
    S = e.log_prior + e.contributions.sum(axis=0)
    np.testing.assert_allclose(np.exp(S - logsumexp(S)), abst.predict_proba(row[None])[0], atol=1e-12)
    abst.save(tmp_path / "lm.json")
    back = LabelModel.load(tmp_path / "lm.json")
    assert back.config.abstain_evidence is True
    np.testing.assert_allclose(back.predict_proba(L_test), abst.predict_proba(L_test))


def test_crowd_route_is_untouched():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    L = np.where(rng.random((400, 6)) < 0.7, y[:, None], rng.integers(0, 3, (400, 6)))
    L[rng.random((400, 6)) < 0.3] = -1
    a = LabelModel(3).fit(L)
    b = LabelModel(3, abstain_evidence=True).fit(L)
    assert a.fit_info_["chosen"] == b.fit_info_["chosen"] == "confusion"
    np.testing.assert_array_equal(a.predict_proba(L), b.predict_proba(L))


def test_bad_value_and_too_large_a_table_are_clear_errors(uneven, monkeypatch):
    with pytest.raises(ValueError, match="abstain_evidence must be true or false, got 'yes'"):
        LabelModel(2, abstain_evidence="yes")
    monkeypatch.setattr(abstain, "_MAX_CONFUSION_CELLS", 10)
    with pytest.raises(ValueError, match=r"abstain_evidence=True needs a table of 8 LFs x 3 x 2 = 48 cells.*"
                                         "set abstain_evidence to false"):
        LabelModel(2, abstain_evidence=True).fit(uneven[0])
