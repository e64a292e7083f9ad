"""``em_class_balance``: with no known class balance, the precision EM estimates it (default)
or holds it at uniform (``"uniform"``, Snorkel's default) (issue 8, session 16).

The fixture: one-class LFs of a 75% and a 25% class, the common class's LFs voting on more
of its rows. Abstaining is uninformative in the precision model, so EM over-trusts the LFs
that cover their class more; the estimated balance leans the same way and discounts their
votes, the uniform one does not (the shape of ``labelmodel.validation``'s random scenarios,
where uniform lost 1.5 to 4.4 points on average).
"""

from __future__ import annotations

import numpy as np
import pytest

from labelmodel import LabelModel, LabelModelConfig, MajorityLabelVoter, MomentEstimator, stats_from_matrix
from labelmodel.model import expected_accuracy

from .synthetic import sample_unipolar

LF_CLASS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
HIT = np.array([0.5, 0.4, 0.45, 0.3, 0.3, 0.25, 0.35, 0.2])
FALSE = np.array([0.05, 0.08, 0.06, 0.1, 0.04, 0.06, 0.05, 0.08])
BALANCE = np.array([0.75, 0.25])


@pytest.fixture(scope="module")
def imbalanced():
    L, y = sample_unipolar(4000, LF_CLASS, HIT, FALSE, BALANCE, seed=0)
    L_test, y_test = sample_unipolar(4000, LF_CLASS, HIT, FALSE, BALANCE, seed=100)
    return L, y, L_test, y_test


def test_default_estimates_the_balance(imbalanced):
    L, _, L_test, y_test = imbalanced
    lm = LabelModel(2).fit(L)
    assert lm.config.em_class_balance == "estimate" and lm.fit_info_["chosen"] == "dawid_skene"
    pi = np.exp(lm.params_.train_log_prior)
    assert pi[0] > 0.6  # EM's estimate of the covered rows' balance scores the voted rows ...
    np.testing.assert_allclose(lm.estimated_class_balance_, pi)
    unvoted = (L_test == -1).all(axis=1)
    assert unvoted.any()
    np.testing.assert_allclose(lm.predict_proba(L_test[unvoted]), 0.5)  # ... trust 0: unvoted rows uniform
    trusted = LabelModel(2, class_balance_trust=1.0).fit(L)
    np.testing.assert_allclose(trusted.predict_proba(L_test[unvoted])[0], pi, atol=1e-9)
    mv = expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L_test), y_test)
    assert expected_accuracy(lm.predict_proba(L_test), y_test) > mv + 0.005


def test_uniform_holds_it_in_em_and_scores_every_row_with_it(imbalanced):
    L, _, L_test, y_test = imbalanced
    uni = LabelModel(2, em_class_balance="uniform").fit(L)
    est = LabelModel(2).fit(L)
    np.testing.assert_allclose(np.exp(uni.params_.train_log_prior), [0.5, 0.5])
    np.testing.assert_allclose(uni.class_balance_, [0.5, 0.5])
    assert uni.fit_info_["em_class_balance"] == "uniform" and "em_class_balance" not in est.fit_info_
    # estimated_class_balance_ is then the class share of the posteriors
    assert uni.estimated_class_balance_.sum() == pytest.approx(1.0) and uni.estimated_class_balance_[0] > 0.55
    # a lone vote's posterior is its precision (the weights are likelihood ratios against uniform)
    lone = (L_test[:, 0] == 0) & ((L_test != -1).sum(axis=1) == 1)
    assert lone.any()
    np.testing.assert_allclose(uni.predict_proba(L_test[lone])[:, 0], uni.params_.precision[0, 0])
    # class_balance_trust has nothing to shrink
    np.testing.assert_allclose(LabelModel(2, em_class_balance="uniform", class_balance_trust=1.0).fit(L)
                               .predict_proba(L_test), uni.predict_proba(L_test))
    # here, as in most random scenarios, the estimated balance is the better fit
    acc = {name: expected_accuracy(m.predict_proba(L_test), y_test)
           for name, m in (("uniform", uni), ("estimate", est))}
    assert acc["estimate"] > acc["uniform"] + 0.005, acc


def test_a_known_balance_scores_the_rows_and_em_estimates_its_own(imbalanced):
    L, _, L_test, _ = imbalanced
    a = LabelModel(2, em_class_balance="uniform").fit(L, class_balance=BALANCE)
    b = LabelModel(2).fit(L, class_balance=BALANCE)
    np.testing.assert_allclose(a.predict_proba(L_test), b.predict_proba(L_test), atol=1e-12)
    np.testing.assert_allclose(a.class_balance_, BALANCE)
    assert a.fit_info_["em_class_balance"].startswith("unused: a class balance is known")
    # so does abstain_evidence, whose table needs EM's balance of the covered rows
    c = LabelModel(2, abstain_evidence=True, em_class_balance="uniform").fit(L)
    d = LabelModel(2, abstain_evidence=True).fit(L)
    np.testing.assert_allclose(c.predict_proba(L_test), d.predict_proba(L_test), atol=1e-12)
    assert c.fit_info_["em_class_balance"].startswith("unused: abstain_evidence")


def test_fit_info_says_when_the_setting_went_unused(imbalanced):
    L, y, _, _ = imbalanced
    # routes without a class balance in EM: the confusion model (workers that vote both classes)
    # and the full parameterization; the moment estimator holds it as the pattern EM does
    rng = np.random.default_rng(0)
    right = rng.random((len(y), 6)) < 0.8
    crowd = np.where(rng.random((len(y), 6)) < 0.5, np.where(right, y[:, None], 1 - y[:, None]), -1)
    conf = LabelModel(2, em_class_balance="uniform").fit(crowd)
    assert conf.fit_info_["chosen"] == "confusion"
    assert conf.fit_info_["em_class_balance"] == "unused: the confusion route has no EM class balance to hold"
    full = LabelModel(2, em_class_balance="uniform", parameterization="full").fit(L)
    assert full.fit_info_["em_class_balance"] == "unused: the full parameterization has no EM class balance to hold"
    moments = MomentEstimator(2, em_class_balance="uniform").fit_from_stats(stats_from_matrix(L, 2))
    assert moments.fit_info_["em_class_balance"] == "uniform"


def test_moments_follow_the_setting(imbalanced):
    L, _, _, _ = imbalanced
    stats = stats_from_matrix(L, 2)
    assert np.exp(MomentEstimator(2).fit_from_stats(stats).params_.train_log_prior)[0] > 0.6
    uni = MomentEstimator(2, em_class_balance="uniform").fit_from_stats(stats)
    np.testing.assert_allclose(np.exp(uni.params_.train_log_prior), [0.5, 0.5])


def test_bad_value_names_the_key_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown em_class_balance 'fixed'; use one of estimate, uniform"):
        LabelModelConfig.from_dict({"em_class_balance": "fixed"})
    with pytest.raises(ValueError, match="em_class_balance"):
        LabelModel(2, em_class_balance="snorkel")


def test_default_fit_info_and_saved_config_are_as_before(imbalanced, tmp_path):
    L, _, _, _ = imbalanced
    lm = LabelModel(2).fit(L)
    # the estimate is reported exactly as before the option existed
    assert lm.fit_info_["estimated_class_balance"] == np.exp(lm.params_.train_log_prior).tolist()
    # a key added later is written only when set: a model saved before it re-serializes to
    # the same dict (same hash, so `lakelabel verify` rebuilds its run), and a default model
    # saved now still loads where the key is unknown
    d = lm.to_dict()
    assert "em_class_balance" not in d["config"]
    again = LabelModel.from_dict(d).to_dict()
    assert again == d
    uni = LabelModel(2, em_class_balance="uniform").fit(L)
    uni.save(str(tmp_path / "uni.json"))
    loaded = LabelModel.load(str(tmp_path / "uni.json"))
    assert loaded.config.em_class_balance == "uniform" and loaded.to_dict()["config"]["em_class_balance"] == "uniform"


def test_dev_labels(imbalanced):
    L, y, L_test, _ = imbalanced
    # Y_dev with L_dev: the dev balance is not imposed (README, dev labels), so uniform holds
    # uniform there too, the dev rows entering EM as labeled rows when they help
    with_votes = LabelModel(2, em_class_balance="uniform").fit(L[:3500], L_dev=L[3500:], Y_dev=y[3500:])
    np.testing.assert_allclose(np.exp(with_votes.params_.train_log_prior), [0.5, 0.5])
    # Y_dev alone is a known balance: it scores the rows and EM estimates its own
    alone = LabelModel(2, em_class_balance="uniform", class_smoothing=0.0).fit(L, Y_dev=y)
    np.testing.assert_allclose(alone.class_balance_, np.bincount(y) / len(y))
    assert np.exp(alone.params_.train_log_prior)[0] == pytest.approx(0.75, abs=0.03)
