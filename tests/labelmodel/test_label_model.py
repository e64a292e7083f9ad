"""The default LabelModel: recovery, invariances, numerics, persistence, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from labelmodel import (
    ABSTAIN,
    LabelModel,
    MajorityLabelVoter,
    expected_accuracy,
    stats_from_matrix,
)

from .synthetic import empirical_precision, sample_symmetric, sample_unipolar

ACC = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6])
COV = np.array([0.3, 0.5, 0.2, 0.6, 0.4, 0.5, 0.3, 0.7])


@pytest.fixture(scope="module")
def sym3():
    L, y = sample_symmetric(20000, ACC, COV, np.array([0.5, 0.3, 0.2]), seed=0)
    return L, y


def test_parameter_recovery_with_weak_prior(sym3):
    # With a weak prior the estimates are the data's: within 0.03 of each LF's true precision.
    L, y = sym3
    lm = LabelModel(cardinality=3, method="dawid_skene", prior_strength=0.001, class_balance_trust=0.5).fit(L)
    err = np.abs(lm.estimated_accuracies() - empirical_precision(L, y))
    assert err.max() < 0.03, err
    assert np.abs(lm.estimated_class_balance_ - np.bincount(y) / len(y)).max() < 0.02
    # the prediction prior is the estimate shrunk halfway (log space) toward uniform
    q = np.sqrt(lm.estimated_class_balance_)
    np.testing.assert_allclose(lm.class_balance_, q / q.sum())


def test_default_recovers_accuracies_and_beats_majority(sym3):
    # The default prior is worth 2.5% of the rows, so estimates are shrunk toward the
    # prior precision (0.8): within 0.06 here, with the ranking and the accuracy gain intact.
    L, y = sym3
    lm = LabelModel(cardinality=3).fit(L)
    est, true = lm.estimated_accuracies(), empirical_precision(L, y)
    assert np.abs(est - true).max() < 0.06
    assert np.corrcoef(est, true)[0, 1] > 0.95
    mv = MajorityLabelVoter(3).fit(L)
    assert expected_accuracy(lm.predict_proba(L), y) > expected_accuracy(mv.predict_proba(L), y) + 0.01


def test_fit_equals_fit_from_stats_and_is_deterministic(sym3):
    L, _ = sym3
    a = LabelModel(3).fit(L).predict_proba(L[:500])
    b = LabelModel(3).fit_from_stats(stats_from_matrix(L, 3)).predict_proba(L[:500])
    c = LabelModel(3).fit(L).predict_proba(L[:500])
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_invariant_to_lf_order_and_row_order(sym3):
    L, _ = sym3
    L = L[:5000]
    rng = np.random.default_rng(3)
    perm_lf, perm_row = rng.permutation(L.shape[1]), rng.permutation(len(L))
    base = LabelModel(3).fit(L)
    by_lf = LabelModel(3).fit(L[:, perm_lf])
    by_row = LabelModel(3).fit(L[perm_row])
    np.testing.assert_allclose(by_lf.estimated_accuracies(), base.estimated_accuracies()[perm_lf], atol=1e-9)
    np.testing.assert_allclose(by_lf.predict_proba(L[:, perm_lf]), base.predict_proba(L), atol=1e-9)
    assert np.array_equal(by_row.estimated_accuracies(), base.estimated_accuracies())


def test_all_abstain_rows_get_the_class_prior(sym3):
    L, _ = sym3
    lm = LabelModel(3).fit(L)
    p = lm.predict_proba(np.full((4, L.shape[1]), ABSTAIN))
    np.testing.assert_allclose(p, np.tile(lm.class_balance_, (4, 1)))
    given = LabelModel(3).fit(L, class_balance=[0.2, 0.3, 0.5])
    np.testing.assert_allclose(given.predict_proba(np.full((1, L.shape[1]), ABSTAIN))[0], [0.2, 0.3, 0.5])


def test_no_nan_with_a_thousand_lfs():
    L, y = sample_symmetric(400, np.full(1000, 0.9), np.full(1000, 0.8), np.array([0.5, 0.5]), seed=1)
    lm = LabelModel(2).fit(L)
    p = lm.predict_proba(L)
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)
    assert expected_accuracy(p, y) == 1.0


def test_worse_than_random_lf_is_recognized_when_most_beat_random():
    acc = np.array([0.85, 0.8, 0.8, 0.75, 0.9, 0.1])  # the last LF is mostly wrong
    L, y = sample_symmetric(20000, acc, np.full(6, 0.5), np.array([0.5, 0.5]), seed=2)
    mv = expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L), y)
    lm = LabelModel(2, method="dawid_skene", better_than_chance=False).fit(L)
    est = lm.estimated_accuracies()
    assert est[-1] < 0.5 and (est[:-1] > 0.5).all()
    assert (lm.params_.weights[-1] < 0).all()  # its votes count against the class they name
    assert expected_accuracy(lm.predict_proba(L), y) > mv
    # the precision model's default assumes every LF better than chance: it holds this one at
    # chance (its votes barely count) and says so
    lm = LabelModel(2, method="dawid_skene").fit(L)
    assert sorted(lm.fit_info_["held_at_chance"]) == ["lf_5:0", "lf_5:1"]
    assert np.abs(lm.params_.weights[-1]).max() < 0.01 and (lm.estimated_accuracies()[:-1] > 0.5).all()
    assert expected_accuracy(lm.predict_proba(L), y) > mv
    # the default (these LFs vote both classes: the confusion model) sees it too
    lm = LabelModel(2).fit(L)
    assert lm.fit_info_["chosen"] == "confusion"
    C = lm.confusion_[-1, 1:, :]  # [vote, class]
    assert C[1, 0] > C[0, 0] and C[0, 1] > C[1, 1]  # it says the other class more often
    assert expected_accuracy(lm.predict_proba(L), y) > expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L), y)


def test_duplicated_lfs_count_once():
    L, _ = sample_symmetric(5000, ACC[:5], COV[:5], np.array([0.5, 0.5]), seed=4)
    base = LabelModel(2).fit(L)
    dup = LabelModel(2).fit(np.concatenate([L, L[:, [0, 0]]], axis=1))
    assert dup.fit_info_["duplicate_groups"] == [["lf_0", "lf_5", "lf_6"]]
    np.testing.assert_allclose(dup.predict_proba(np.concatenate([L, L[:, [0, 0]]], axis=1)), base.predict_proba(L), atol=1e-12)


def test_lf_that_never_fires_is_harmless():
    L, y = sample_symmetric(5000, ACC[:5], COV[:5], np.array([0.5, 0.5]), seed=5)
    with_silent = np.concatenate([L, np.full((len(L), 1), ABSTAIN)], axis=1)
    lm = LabelModel(2).fit(with_silent)
    assert np.isnan(lm.estimated_accuracies()[-1])
    np.testing.assert_allclose(lm.predict_proba(with_silent), LabelModel(2).fit(L).predict_proba(L), atol=1e-12)


def test_imbalanced_unipolar_lfs_with_dependent_lfs():
    # Keyword-like LFs (each votes one class), sub-topics make same-class LFs dependent,
    # one class is rare: the model must not collapse onto a class. With the default uniform
    # prior on rows without votes it stays within a point of majority vote (dependence is
    # not modeled, see labelmodel/README.md); trusting the estimated balance there beats it.
    rng = np.random.default_rng(6)
    lf_class = np.repeat(np.arange(3), 6)
    hit = rng.uniform(0.05, 0.3, 18)
    false = rng.uniform(0.002, 0.05, 18)
    scores, trusting = [], []
    for seed in range(3):
        L, y = sample_unipolar(8000, lf_class, hit, false, np.array([0.7, 0.25, 0.05]), seed=seed, subtopics=3)
        lm = LabelModel(3).fit(L)
        mv = expected_accuracy(MajorityLabelVoter(3).fit(L).predict_proba(L), y)
        scores.append(expected_accuracy(lm.predict_proba(L), y) - mv)
        trust = LabelModel(3, class_balance_trust=1.0).fit(L)
        trusting.append(expected_accuracy(trust.predict_proba(L), y) - mv)
        assert lm.estimated_class_balance_.max() < 0.9
    assert np.mean(scores) > -0.01 and np.mean(trusting) > 0.0, (scores, trusting)


def test_predict_and_score_api(sym3):
    L, y = sym3
    lm = LabelModel(3, tie_break_policy="first").fit(L)
    preds, probs = lm.predict(L[:100], return_probs=True)
    assert preds.shape == (100,) and probs.shape == (100, 3)
    ids = np.arange(100) + 10_000
    rand = lm.predict(L[:100], tie_break_policy="random", row_ids=ids)
    assert (rand >= 0).all()
    with pytest.warns(UserWarning, match="rows are left out of the metrics"):
        scores = lm.score(L, y, metrics=("accuracy", "coverage", "f1_macro"))
    # "first" breaks every tie; only rows where every LF abstained stay unlabeled
    assert set(scores) == {"accuracy", "coverage", "f1_macro"}
    assert scores["coverage"] == (L != ABSTAIN).any(axis=1).mean() < 1.0
    with pytest.raises(ValueError, match="metric 'f1' is binary"):
        lm.score(L, y, metrics=("f1",))
    assert lm.confusion_.shape == (8, 4, 3)
    np.testing.assert_allclose(lm.confusion_.sum(axis=1), 1.0)
    assert (lm.confusion_ >= 0).all()


def test_save_load_round_trip(tmp_path, sym3):
    L, _ = sym3
    lm = LabelModel(3, seed=11).fit(L, lf_names=[f"kw_{i}" for i in range(8)])
    for name in ("m.json", "m.npz"):
        path = tmp_path / name
        lm.save(path)
        back = LabelModel.load(path)
        assert back.lf_names == lm.lf_names and back.config == lm.config
        assert np.array_equal(back.predict_proba(L[:200]), lm.predict_proba(L[:200]))
        np.testing.assert_array_equal(back.estimated_accuracies(), lm.estimated_accuracies())
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["format"] == "lakelabel.labelmodel" and saved["class"] == "LabelModel"
    # A save that fails midway (a full disk, a kill) leaves the model saved before whole and no other file: it
    # wrote over the file in place (a drill, session 25).
    class Unwritable:  # the JSON text, whose writing fails with a full disk
        def encode(self, *args):
            raise OSError("No space left on device")

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for name, module, attr, fake in (("m.json", json, "dumps", lambda *a, **k: Unwritable()),
                                     ("m.npz", np.lib.format, "write_array", full_disk)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(module, attr, fake)
            with pytest.raises((OSError, TypeError)):
                lm.save(tmp_path / name)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(ValueError, match="not a saved lakelabel label model"):
        LabelModel.from_dict({"format": "pickle"})


def test_the_usual_wrong_matrices_say_what_to_do(sym3):
    """A drill: NaN for abstain said "found non-integers", None "got dtype <U4", a sparse matrix "got shape ()", a
    boolean matrix passed as votes 0/1, and repeated lf_names were taken."""
    import scipy.sparse

    L, _ = sym3
    fill = r"L holds missing values \(NaN or None\); an abstain is -1 here, as in Snorkel: fill them with -1"
    with pytest.raises(ValueError, match=r"^L_train: " + fill):
        LabelModel(3).fit(np.where(L < 0, np.nan, L))
    with pytest.raises(ValueError, match=r"^L_train: " + fill):
        LabelModel(3).fit(np.where(L < 0, None, L).astype(object))
    with pytest.raises(ValueError, match=r"^L_train is a scipy sparse matrix; pass a dense one \(L_train.toarray\(\)\)"):
        LabelModel(3).fit(scipy.sparse.csr_matrix(np.maximum(L, 0)))
    import pandas as pd

    nullable = pd.DataFrame({f"c{j}": pd.array(np.where(L[:, j] < 0, None, L[:, j]), dtype="Int64")
                             for j in range(L.shape[1])})  # pandas' NA for abstain (a review: "got dtype <U4")
    with pytest.raises(ValueError, match=r"^L_train: " + fill):
        LabelModel(3).fit(nullable)
    with pytest.raises(ValueError, match=r"^L_train's columns \(the LF names\) must be distinct; repeated: \['a'\]$"):
        LabelModel(3).fit(pd.DataFrame(L[:, :2], columns=["a", "a"]))
    with pytest.raises(ValueError, match=r"^L_train: L is boolean; it must hold class ids"):
        LabelModel(3).fit(L > 0)
    with pytest.raises(ValueError, match=r"^lf_names must be distinct; repeated: \['a'\]$"):
        stats_from_matrix(L[:, :2], 3, lf_names=["a", "a"])
    with pytest.raises(ValueError, match=r"^lf_names has 1 name for 2 LF columns; give one name per column of L$"):
        stats_from_matrix(L[:, :2], 3, lf_names=["a"])


def test_a_dataframes_columns_are_the_lf_names_and_predict_checks_them(sym3):
    """A drill: a DataFrame's column names were dropped (lf_0, lf_1, ...), so reordered or renamed columns at
    predict silently gave other probabilities."""
    import pandas as pd

    L, _ = sym3
    names = [f"kw_{j}" for j in range(L.shape[1])]
    frame = pd.DataFrame(L, columns=names)
    lm = LabelModel(3, seed=0).fit(frame)
    assert lm.lf_names == tuple(names)
    assert np.array_equal(lm.predict_proba(frame), lm.predict_proba(L))  # numpy needs no names
    with pytest.raises(ValueError, match=r"^L's columns are the fitted LFs in another order; pass "
                                         r"L\[list\(model.lf_names\)\]$"):
        lm.predict_proba(frame[names[::-1]])
    with pytest.raises(ValueError, match=r"^L's columns \['other'\] are not LFs of the fit, which also had \['kw_0'\]"):
        lm.predict(frame.rename(columns={"kw_0": "other"}))
    # Fitted on numpy (names lf_0, ...): a DataFrame of any names is read by position, as before.
    assert np.array_equal(LabelModel(3, seed=0).fit(L).predict_proba(frame), lm.predict_proba(L))
    # lf_names other than the frame's columns: refused at fit (predict on the same frame refused it).
    with pytest.raises(ValueError, match=r"^lf_names \['a0', .* are not L_train's columns \['kw_0', .*: a DataFrame's "
                                         r"columns are its LF names; leave lf_names out, or rename the columns$"):
        LabelModel(3, seed=0).fit(frame, lf_names=[f"a{j}" for j in range(L.shape[1])])
    assert LabelModel(3, seed=0).fit(frame, lf_names=names).lf_names == tuple(names)
    assert LabelModel(3, seed=0).fit(pd.DataFrame(L), lf_names=names).lf_names == tuple(names)  # unnamed columns


def test_a_damaged_or_foreign_file_is_one_error_naming_it(sym3, tmp_path):
    """A drill: a JSON file without params raised a bare KeyError: 'params', a foreign .npz "KeyError: '__meta__ is
    not a file in the archive'", and a config key of a newer version named no file."""
    import json

    L, _ = sym3
    LabelModel(3, seed=0).fit(L).save(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "no_params.json").write_text(json.dumps({k: v for k, v in saved.items() if k != "params"}))
    (tmp_path / "newer.json").write_text(json.dumps({**saved, "config": {**saved["config"], "brand_new": 1}}))
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match=r"^cannot load the label model '.*no_params.json': missing key 'params'; pass "
                                         r"a file LabelModel.save wrote \(one a newer lakelabel saved needs that "
                                         r"version\)$"):
        LabelModel.load(tmp_path / "no_params.json")
    with pytest.raises(ValueError, match=r"^cannot load the label model '.*newer.json': unknown label model config "
                                         r"key\(s\) \['brand_new'\]"):
        LabelModel(3).load(tmp_path / "newer.json")  # into an instance, as Snorkel users do
    with pytest.raises(ValueError, match=r"^'.*other.npz' is a .npz or zip file, but not one LabelModel.save wrote"):
        LabelModel.load(tmp_path / "other.npz")
    (tmp_path / "foreign.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match=r"^cannot load the label model '.*foreign.json': not a saved lakelabel label "
                                         r"model \(format=None\)"):
        LabelModel.load(tmp_path / "foreign.json")


def test_errors_name_the_problem(sym3):
    L, _ = sym3
    lm = LabelModel(3)
    with pytest.raises(RuntimeError, match="not fitted; call fit"):
        lm.predict_proba(L)
    with pytest.raises(ValueError, match="L_train: L holds 3, outside the label space"):
        lm.fit(np.array([[0, 3, -1]]))
    with pytest.raises(ValueError, match="L_train: L holds -2, outside the label space"):
        lm.fit(np.array([[0, -2, -1]]))
    with pytest.raises(ValueError, match="must be a 2-D"):
        lm.fit(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"L_train: L must hold integer class ids .*got dtype <U"):
        lm.fit(np.array([["0", "1", "-1"]]))  # labels as strings: map them to class ids first
    with pytest.raises(ValueError, match=r"L_train: L must hold integer class ids .*got dtype <U"):
        lm.fit(np.array([["a", 1, -1]], dtype=object))
    # Integers in an object array (a nullable-integer frame's .to_numpy()) are class ids like any others.
    assert np.allclose(LabelModel(3).fit(L.astype(object)).predict_proba(L), LabelModel(3).fit(L).predict_proba(L))
    with pytest.raises(ValueError, match="L_train has no rows"):
        lm.fit(np.zeros((0, 4), dtype=int))
    with pytest.raises(ValueError, match="L_train has no LF columns"):
        lm.fit(np.zeros((5, 0), dtype=int))
    lm.fit(L)
    with pytest.raises(ValueError, match="L has 7 LF columns but the model was fitted on 8"):
        lm.predict_proba(L[:, :7])
    with pytest.raises(ValueError, match="L: L holds 5, outside the label space"):
        lm.predict(np.full((1, 8), 5))
    with pytest.raises(ValueError, match="Y_dev holds 3, outside the label space 0..2"):
        LabelModel(3).fit(L, Y_dev=[0, 3])
    with pytest.raises(ValueError, match=r"class_balance has 2 entries \[0.5, 0.5\], but cardinality is 3"):
        LabelModel(3).fit(L, class_balance=[0.5, 0.5])
    with pytest.raises(ValueError, match="cardinality 3 but this model has cardinality 2"):
        LabelModel(2).fit_from_stats(stats_from_matrix(L, 3))
    with pytest.raises(ValueError, match="L_dev was given without Y_dev"):
        LabelModel(3).fit(L, L_dev=L[:10])


def test_snorkel_style_call_runs():
    L, _ = sample_symmetric(2000, ACC[:4], COV[:4], np.array([0.5, 0.5]), seed=8)
    lm = LabelModel(cardinality=2, verbose=True)
    with pytest.warns(UserWarning, match=r"ignoring Snorkel SGD option\(s\) \['lr', 'n_epochs'\]"):
        lm.fit(L_train=L, n_epochs=500, lr=0.001, seed=123, progress_bar=False)
    assert lm.config.seed == 123
    assert lm.get_weights().shape == (4,) and lm.get_conditional_probs().shape == (4, 3, 2)
    with pytest.raises(TypeError, match=r"unexpected fit\(\) argument\(s\) \['epochs'\]"):
        lm.fit(L, epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.predict(L, tie_break_policy="abstain")


def test_a_fit_that_stops_at_max_iter_warns_at_the_callers_line(sym3):
    """EM that has not settled by max_iter says so (it used to only set fit_info_["converged"] False), pointing at
    the user's call whichever way it came; a fit that converges says nothing."""
    from labelmodel import ConvergenceWarning, DawidSkene, LabelModelConfig

    L, _ = sym3
    calls = [lambda: LabelModel(cardinality=3, config=LabelModelConfig(max_iter=2)).fit(L),
             lambda: LabelModel(cardinality=3, config=LabelModelConfig(max_iter=2)).fit_from_stats(stats_from_matrix(L, 3)),
             lambda: DawidSkene(cardinality=3, max_iter=2).fit(L, aggregate=False)]  # fmt: skip
    for call in calls:
        with pytest.warns(ConvergenceWarning, match=r"fit stopped at max_iter=2 before its parameters settled") as said:
            model = call()
        assert model.fit_info_["converged"] is False and said[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert LabelModel(cardinality=3).fit(L).fit_info_["converged"] is True
