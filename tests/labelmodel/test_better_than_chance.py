"""The better-than-chance assumption of the precision model (issue 8, the people loop on YouTube).

A broad LF of one class (65% of rows, 72% precise: "short comments are ham") against precise,
narrower LFs of the other class: the rows the broad LF shares with other LFs are mostly the
other class's, its lone rows mostly its own. Abstaining is uninformative in the precision
model, so EM estimates its precision from the shared rows alone, and without the assumption
that falls below one half and every lone row goes to the other class.
"""

from __future__ import annotations

import numpy as np
import pytest

from labelmodel import LabelModel, MajorityLabelVoter, MomentEstimator, stats_from_matrix
from labelmodel.dawid_skene import chance_floor
from labelmodel.model import expected_accuracy

from .synthetic import sample_unipolar

# LF 0: broad class-0 rule; LFs 1-5: precise class-1 keywords; LF 6: a precise class-0 keyword
LF_CLASS = np.array([0, 1, 1, 1, 1, 1, 0])
HIT = np.array([0.936, 0.25, 0.2, 0.15, 0.2, 0.3, 0.2])
FALSE = np.array([0.364, 0.01, 0.005, 0.01, 0.015, 0.01, 0.01])


@pytest.fixture(scope="module")
def broad():
    L, y = sample_unipolar(2000, LF_CLASS, HIT, FALSE, np.array([0.5, 0.5]), seed=0)
    L_test, y_test = sample_unipolar(2000, LF_CLASS, HIT, FALSE, np.array([0.5, 0.5]), seed=100)
    return L, y, L_test, y_test


def _lone_rows(L: np.ndarray, j: int) -> np.ndarray:
    return (L[:, j] != -1) & ((L != -1).sum(axis=1) == 1)


def test_the_shape_is_the_people_loop_shape(broad):
    L, y, _, _ = broad
    voted = L[:, 0] == 0
    assert 0.6 < voted.mean() < 0.7 and 0.68 < (y[voted] == 0).mean() < 0.76
    lone = _lone_rows(L, 0)
    assert (y[lone] == 0).mean() > 0.8  # its lone rows are mostly its class ...
    assert (y[voted & ~lone] == 0).mean() < 0.5  # ... the rows it shares mostly not


@pytest.mark.parametrize("em_class_balance", ["estimate", "uniform"])
def test_broad_lf_stays_above_chance_and_beats_majority_vote(broad, em_class_balance):
    L, y, L_test, y_test = broad
    lm = LabelModel(2, em_class_balance=em_class_balance).fit(L)
    assert lm.fit_info_["chosen"] == "dawid_skene"
    assert lm.estimated_accuracies()[0] > 0.5
    # the estimated balance (the default) drifts to the precise LFs' class (0.63 here) and EM
    # pushes the broad LF down to the bound; held at uniform, EM keeps it above on its own
    assert lm.fit_info_["held_at_chance"] == (["lf_0:0"] if em_class_balance == "estimate" else [])
    # its lone rows go to its class, as in majority vote
    lone = _lone_rows(L_test, 0)
    assert (lm.predict_proba(L_test[lone])[:, 0] > 0.5).all()
    ours = expected_accuracy(lm.predict_proba(L_test), y_test)
    mv = expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L_test), y_test)
    assert ours > mv + 0.01, (ours, mv)


def test_without_the_assumption_an_estimated_balance_sends_the_lone_rows_to_the_other_class(broad):
    L, _, L_test, y_test = broad
    mv = expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L_test), y_test)
    lm = LabelModel(2, better_than_chance=False).fit(L)
    assert lm.estimated_accuracies()[0] < 0.45
    assert lm.fit_info_["held_at_chance"] == []
    assert (lm.predict_proba(L_test[_lone_rows(L_test, 0)])[:, 1] > 0.5).all()
    assert expected_accuracy(lm.predict_proba(L_test), y_test) < mv - 0.1
    # the balance held at uniform removes that collapse even without the assumption
    held = LabelModel(2, better_than_chance=False, em_class_balance="uniform").fit(L)
    assert held.estimated_accuracies()[0] > 0.5
    assert expected_accuracy(held.predict_proba(L_test), y_test) > mv + 0.01


@pytest.mark.parametrize("estimator", [LabelModel, MomentEstimator])
def test_a_known_class_balance_keeps_the_assumption(broad, estimator):
    """A given balance scores the rows in place of EM's estimate, against which EM held the
    votes: the bound is applied again against the given one (an operator drill, session 18:
    a Snorkel user's ``class_balance=[0.5, 0.5]`` sent a 94%-precise link LF's lone votes to ham)."""
    L, _, L_test, _ = broad
    lone = _lone_rows(L_test, 0)
    balance = [0.3, 0.7]  # more of the precise LFs' class than EM's estimate (0.63)
    lm = estimator(2).fit_from_stats(stats_from_matrix(L, 2), class_balance=balance)
    np.testing.assert_allclose(lm.class_balance_, balance)
    assert (lm.predict_proba(L_test[lone])[:, 0] >= 0.5).all()
    assert "lf_0:0" in lm.fit_info_["held_at_chance"]
    # every vote alone on a row: its class is the most probable (ties within the margin)
    for j, c in enumerate(LF_CLASS):
        row = np.full((1, len(LF_CLASS)), -1)
        row[0, j] = c
        assert lm.predict_proba(row)[0, c] >= 0.5, j
    # without the assumption the given balance outweighs the broad LF's lone vote
    free = estimator(2, better_than_chance=False).fit_from_stats(stats_from_matrix(L, 2), class_balance=balance)
    assert (free.predict_proba(L_test[lone])[:, 1] > 0.5).all()


def test_moments_and_dev_labels_keep_the_assumption(broad):
    L, y, L_test, _ = broad
    stats = stats_from_matrix(L, 2)
    mom = MomentEstimator(2).fit_from_stats(stats)
    assert mom.estimated_accuracies()[0] > 0.5
    assert (mom.predict_proba(L_test[_lone_rows(L_test, 0)])[:, 0] > 0.5).all()
    dev = LabelModel(2).fit(L[:1900], L_dev=L[1900:], Y_dev=y[1900:])
    assert dev.estimated_accuracies()[0] > 0.5


def test_every_lone_vote_names_its_class_with_many_classes():
    # 4 unequal classes, weak one-class LFs of a rare class: a lone vote still decides the row
    lf_class = np.repeat(np.arange(4), 3)
    hit = np.tile([0.5, 0.2, 0.1], 4)
    false = np.tile([0.2, 0.02, 0.05], 4)
    L, _ = sample_unipolar(4000, lf_class, hit, false, np.array([0.55, 0.25, 0.15, 0.05]), seed=3)
    lm = LabelModel(4).fit(L)
    lone = np.full((12, 12), -1)
    np.fill_diagonal(lone, lf_class)
    assert (lm.predict_proba(lone).argmax(axis=1) == lf_class).all()
    assert (lm.predict(lone, tie_break_policy="abstain") == lf_class).all()


def test_chance_floor_is_the_runner_up_class():
    log_pi = np.log(np.array([0.6, 0.3, 0.1]))
    got = chance_floor(log_pi, np.array([0, 1, 2]), margin=0.0)
    np.testing.assert_allclose(got, [np.log(0.3 / 0.6), np.log(0.6 / 0.3), np.log(0.6 / 0.1)])
    # two classes: the bound is precision 1/2, whatever the balance
    log_pi = np.log(np.array([0.2, 0.8]))
    w = chance_floor(log_pi, np.array([0, 1]), margin=0.0)
    np.testing.assert_allclose(w + np.log(np.array([0.2, 0.8]) / np.array([0.8, 0.2])), 0.0, atol=1e-12)


def test_better_than_chance_must_be_a_bool():
    with pytest.raises(ValueError, match="better_than_chance must be true or false"):
        LabelModel(2, better_than_chance="yes")
