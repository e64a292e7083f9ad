"""What a Snorkel 0.10 user meets when switching to ``labelmodel`` (no Snorkel import needed).

Each test pins one public behaviour: Snorkel's where ``labelmodel`` follows it, the
documented difference where it does not.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings

import numpy as np
import pytest

from labelmodel import ABSTAIN, DawidSkene, LabelModel, MajorityLabelVoter, probs_to_preds
from labelmodel.metrics import score_predictions
from .synthetic import sample_symmetric

ACC = np.array([0.9, 0.8, 0.75, 0.7, 0.85])
COV = np.array([0.6, 0.5, 0.4, 0.5, 0.3])


@pytest.fixture(scope="module")
def binary():
    return sample_symmetric(3000, ACC, COV, np.array([0.3, 0.7]), seed=4)


# ----------------------------------------------------------------- unvoted rows
def test_unvoted_rows_get_the_prior_as_probabilities_but_no_label(binary):
    L, _ = binary
    lm = LabelModel(2).fit(L, class_balance=[0.2, 0.8])
    unvoted = np.full((3, L.shape[1]), ABSTAIN)
    np.testing.assert_allclose(lm.predict_proba(unvoted), [[0.2, 0.8]] * 3)
    for policy in ("abstain", "first", "random", "true-random"):
        assert lm.predict(unvoted, tie_break_policy=policy).tolist() == [ABSTAIN] * 3
    # the option labels them with the prior's most likely class (Snorkel's behaviour)
    assert lm.predict(unvoted, label_unvoted=True).tolist() == [1, 1, 1]
    assert LabelModel(2, label_unvoted=True).fit(L, class_balance=[0.2, 0.8]).predict(unvoted).tolist() == [1, 1, 1]
    # a uniform prior is a tie: labelled only by a policy that breaks ties
    uniform = LabelModel(2).fit(L, class_balance=[0.5, 0.5])
    assert uniform.predict(unvoted, label_unvoted=True).tolist() == [ABSTAIN] * 3
    assert uniform.predict(unvoted, tie_break_policy="first", label_unvoted=True).tolist() == [0, 0, 0]


def test_coverage_counts_unvoted_rows_as_unlabeled():
    # Snorkel's test_score: the all-abstain row is unlabeled and lowers coverage
    L = np.array([[1, 1, 0], [-1, -1, -1], [1, 0, 1]])
    lm = LabelModel(cardinality=2, verbose=False)
    with pytest.warns(UserWarning, match="n_epochs"):
        lm.fit(L, n_epochs=100)
    assert lm.predict(L).tolist() == [1, ABSTAIN, 1]
    with pytest.warns(UserWarning, match="1 of 3 rows are left out"):
        assert lm.score(L, np.array([1, 0, 1]), metrics=["accuracy", "coverage"]) == {"accuracy": 1.0, "coverage": 2 / 3}
    # three LFs that always disagree or abstain leave every row tied
    L = np.array([[-1, 1, 0], [0, -1, 1], [1, 0, -1]])
    assert LabelModel(2).fit(L).predict(L).tolist() == [ABSTAIN] * 3


def test_predict_keeps_snorkels_argument_order(binary):
    L, _ = binary
    lm = LabelModel(2).fit(L)
    preds, probs = lm.predict(L[:5], True, "abstain")
    assert preds.shape == (5,) and probs.shape == (5, 2)
    with pytest.raises(TypeError, match="second argument is return_probs"):
        lm.predict(L[:5], "random")


# ----------------------------------------------------------------- persistence
def test_load_on_an_instance_loads_into_it(tmp_path, binary):
    L, _ = binary
    lm = LabelModel(2, seed=3).fit(L)
    path = tmp_path / "label_model.pkl"  # Snorkel users name it .pkl; the content is JSON
    lm.save(path)
    fresh = LabelModel(cardinality=2, verbose=False)
    assert fresh.load(path) is fresh
    assert np.array_equal(fresh.predict(L), lm.predict(L)) and fresh.config.seed == 3
    # the classmethod form still returns a new model
    assert np.array_equal(LabelModel.load(path).predict_proba(L), lm.predict_proba(L))
    # the file's cardinality and class win over the instance's
    ds = DawidSkene(3).fit(np.array([[0, 1, 2], [0, 1, 2], [2, 2, 2], [1, 1, 0]]))
    ds.save(tmp_path / "ds.json")
    target = LabelModel(2)
    target.load(tmp_path / "ds.json")
    assert target.cardinality == 3 and target.predict_proba(np.array([[0, 1, 2]])).shape == (1, 3)
    assert isinstance(LabelModel.load(tmp_path / "ds.json"), DawidSkene)


def test_load_names_a_file_that_is_not_a_saved_model(tmp_path):
    (tmp_path / "snorkel.pkl").write_bytes(b"\x80\x04\x95 pickled")
    with pytest.raises(ValueError, match="a Snorkel pickle cannot be loaded"):
        LabelModel(2).load(tmp_path / "snorkel.pkl")
    with pytest.raises(FileNotFoundError, match="no saved label model at"):
        LabelModel.load(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(ValueError, match="not a saved lakelabel label model"):
        LabelModel.load(tmp_path / "other.json")


def test_save_names_the_path_when_it_is_a_folder_or_its_folder_is_missing(tmp_path, binary):
    # before: the errors named the temporary file ('.lm.json.<pid>.tmp', or '/.tmp.<pid>.tmp' beside a folder)
    lm = LabelModel(2).fit(binary[0])
    with pytest.raises(IsADirectoryError, match=r"cannot save the label model to '.*': it is a folder; pass a file "
                                                r"path such as '.*label_model.json'"):
        lm.save(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cannot save the label model to '.*missing.lm.json': folder "
                                                r"'.*missing' does not exist; create it first"):
        lm.save(tmp_path / "missing" / "lm.json")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"cannot save the label model to '.*afile/lm.json': '.*afile' is a "
                                                 r"file, not a folder"):
        lm.save(tmp_path / "afile" / "lm.json")
    with pytest.raises(NotADirectoryError, match=r"'.*afile' is a file, not a folder"):
        lm.save(tmp_path / "afile" / "sub" / "lm.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


# ----------------------------------------------------------------- tie breaking
def test_random_without_row_ids_is_snorkels_positional_hash():
    probs = np.array([[0.5, 0.5, 0.0]] * 20 + [[1 / 3] * 3] * 20 + [[0.1, 0.2, 0.7]])
    expected = []
    for i, row in enumerate(probs):
        tied = np.flatnonzero(np.abs(row - row.max()) < 1e-5)
        expected.append(tied[int(hashlib.sha1(str(i).encode()).hexdigest(), 16) % len(tied)])
    preds = probs_to_preds(probs, "random")
    assert preds.tolist() == expected and preds[-1] == 2
    assert len(set(preds[20:40].tolist())) == 3  # spread over the tied classes
    assert np.array_equal(probs_to_preds(probs, "random", seed=99), preds)  # the seed is not used


def test_true_random_follows_numpys_global_state():
    probs = np.full((200, 3), 1 / 3)
    np.random.seed(0)
    a = probs_to_preds(probs, "true-random")
    np.random.seed(0)
    assert np.array_equal(probs_to_preds(probs, "true-random"), a)
    assert set(a.tolist()) == {0, 1, 2}
    np.random.seed(1)
    assert not np.array_equal(probs_to_preds(probs, "true-random"), a)


def test_model_predict_random_without_row_ids(binary):
    L, _ = binary
    lm = LabelModel(2).fit(L, class_balance=[0.5, 0.5])
    tied = np.array([[0, 1, -1, -1, -1]] * 2 + [[-1] * 5])
    probs = lm.predict_proba(tied)
    preds = lm.predict(tied, tie_break_policy="random")
    assert np.array_equal(preds[:2], probs_to_preds(probs[:2], "random"))
    assert preds[2] == ABSTAIN


# ----------------------------------------------------------------- scoring
def test_score_drops_rows_with_unknown_gold(binary):
    L, y = binary
    lm = LabelModel(2).fit(L)
    Y = y.copy()
    Y[:500] = -1
    with pytest.warns(UserWarning, match="left out of the metrics"):
        got = lm.score(L, Y, metrics=["accuracy", "coverage"])
    with pytest.warns(UserWarning):
        ref = lm.score(L[500:], y[500:], metrics=["accuracy"])
    assert got["accuracy"] == ref["accuracy"]
    assert got["coverage"] == (L != ABSTAIN).any(axis=1).mean()  # coverage counts every row


def test_snorkel_metric_names_and_values():
    golds = np.array([1, 1, 1, 1, 0, 0, -1])
    preds = np.array([1, 0, 0, 0, 1, 0, 1])
    probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1], [0.0, 1.0]])
    names = ["accuracy", "coverage", "precision", "recall", "f1", "f1_micro", "f1_macro", "fbeta",
             "matthews_corrcoef", "roc_auc"]
    got = score_predictions(golds, preds, probs, names, beta=2.0)
    # tp=1 fn=3 fp=1 tn=1 on the six rows with a known gold
    expected = {
        "accuracy": 2 / 6, "coverage": 1.0, "precision": 0.5, "recall": 0.25, "f1": 1 / 3,
        "f1_micro": 2 / 6, "f1_macro": (1 / 3 + 2 * 1 / (4 + 2)) / 2, "fbeta": 5 * 0.125 / (4 * 0.5 + 0.25),
        "matthews_corrcoef": -0.25, "roc_auc": 6 / 8,
    }
    assert list(got) == names
    for name, value in expected.items():
        assert got[name] == pytest.approx(value), name
    assert score_predictions(golds, preds, probs, ["fbeta"])["fbeta"] == pytest.approx(1 / 3)  # beta=1 is f1
    # multiclass MCC: 1 when perfect, 0 for a constant prediction
    g = np.array([0, 1, 2, 2, 1, 0])
    p3 = np.full((6, 3), 1 / 3)
    assert score_predictions(g, g, p3, ["matthews_corrcoef"])["matthews_corrcoef"] == pytest.approx(1.0)
    assert score_predictions(g, np.zeros(6, int), p3, ["matthews_corrcoef"])["matthews_corrcoef"] == 0.0


def test_score_accepts_snorkel_metrics_and_names_bad_ones(binary):
    L, y = binary
    lm = LabelModel(2).fit(L)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = lm.score(L, y, metrics=["matthews_corrcoef", "roc_auc", "fbeta"], beta=0.5)
    assert 0.3 < got["matthews_corrcoef"] <= 1 and 0.5 < got["roc_auc"] <= 1 and 0 < got["fbeta"] <= 1
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['auc'\]; use any of accuracy"):
        lm.score(L, y, metrics=["auc"])
    with pytest.raises(ValueError, match="metric 'roc_auc' is binary"):
        LabelModel(3).fit(np.array([[0, 1, 2], [1, 1, 2], [2, 0, 2]])).score(np.array([[0, 1, 2]]), [0], ["roc_auc"])
    with pytest.raises(ValueError, match="Y is empty"):
        lm.score(L[:0], [])
    # Snorkel's Scorer takes metrics=None as no metric: an empty dict, not a TypeError
    assert lm.score(L, y, metrics=None) == {} == lm.score(L, y, metrics=[])


# ----------------------------------------------------------------- class balance from Y_dev
def test_y_dev_sets_the_class_balance(binary):
    L, _ = binary
    Y_dev = np.array([0, 0, 1, 1, 0, 0, 0, 0, 1, 1])
    # class_smoothing=0: Snorkel's raw frequencies (its test_class_balance expects [0.6, 0.4])
    exact = LabelModel(2, class_smoothing=0.0).fit(L, Y_dev=Y_dev)
    np.testing.assert_allclose(exact.class_balance_, [0.6, 0.4])
    # default: one pseudo-count per class
    smoothed = LabelModel(2).fit(L, Y_dev=Y_dev)
    np.testing.assert_allclose(smoothed.class_balance_, [7 / 12, 5 / 12])
    np.testing.assert_allclose(smoothed.predict_proba(np.full((1, 5), ABSTAIN))[0], [7 / 12, 5 / 12])
    # class_balance wins over Y_dev, as in Snorkel
    np.testing.assert_allclose(LabelModel(2).fit(L, Y_dev=Y_dev, class_balance=[0.3, 0.7]).class_balance_, [0.3, 0.7])


def test_y_dev_missing_a_class():
    L = np.array([[0, 1, 2, -1], [1, 1, 2, 2], [2, 0, 2, 2], [0, 0, -1, 0]] * 5)
    with pytest.raises(ValueError, match=r"Y_dev has no row of class\(es\) \[2\].*class_smoothing > 0"):
        LabelModel(3, class_smoothing=0.0).fit(L, Y_dev=[0, 1, 1, 0])
    lm = LabelModel(3).fit(L, Y_dev=[0, 1, 1, 0])  # smoothed: the class keeps a small prior
    np.testing.assert_allclose(lm.class_balance_, [3 / 7, 3 / 7, 1 / 7])


# ----------------------------------------------------------------- bad input
def test_bad_dev_sets_and_class_balances_name_the_argument_value_and_fix(binary):
    L, y = binary
    with pytest.raises(ValueError, match=r"L_dev has 4 LF columns but L_train has 5 \(lf_0, .*\); pass L_dev with the same LFs"):
        LabelModel(2).fit(L, Y_dev=y[:50], L_dev=L[:50, :4])
    with pytest.raises(ValueError, match=r"L_dev has 50 rows but Y_dev has 40 labels"):
        LabelModel(2).fit(L, Y_dev=y[:40], L_dev=L[:50])
    with pytest.raises(ValueError, match=r"L_dev: L holds 2, outside the label space"):
        LabelModel(2).fit(L, Y_dev=y[:2], L_dev=np.full((2, 5), 2))
    with pytest.raises(ValueError, match=r"Y_dev holds 2, outside the label space 0..1 \(cardinality=2\); pass class ids 0..1"):
        LabelModel(2).fit(L, Y_dev=[0, 1, 2])
    with pytest.raises(ValueError, match=r"Y_dev holds -1, .*drop the rows whose gold label is unknown"):
        LabelModel(2).fit(L, Y_dev=[0, -1, 1])
    with pytest.raises(ValueError, match=r"class_balance \[0.5, 0.4\] sums to 0.9, not 1; pass proportions"):
        LabelModel(2).fit(L, class_balance=[0.5, 0.4])
    with pytest.raises(ValueError, match=r"class_balance is \[0.0, 1.0\]: class\(es\) \[0\] are not positive"):
        LabelModel(2).fit(L, class_balance=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"class_balance has 1 entries \[1.0\], but cardinality is 2"):
        LabelModel(2).fit(L, class_balance=[1.0])
    with pytest.raises(ValueError, match=r"class_balance must be a flat list of 2 proportions, got an array of shape \(1, 2\)"):
        LabelModel(2).fit(L, class_balance=[[0.5, 0.5]])
    # Proportions rounded to two decimals (Snorkel takes them as they are) are renormalized.
    rounded = LabelModel(3).fit(np.where(L == 1, 2, L), class_balance=[0.33, 0.33, 0.33])
    np.testing.assert_allclose(rounded.class_balance_, [1 / 3] * 3)
    assert LabelModel(2).fit(L, class_balance=[0.333, 0.666]).class_balance_.sum() == pytest.approx(1)
    # ... also when set on the model's config and dev labels are given (the dev-label route reads the config).
    configured = LabelModel(2, class_balance=[0.33, 0.66]).fit(L, Y_dev=y[:50], L_dev=L[:50])
    np.testing.assert_allclose(configured.class_balance_, [1 / 3, 2 / 3])


def test_snorkel_sgd_options_are_checked_then_ignored(binary):
    L, _ = binary
    base = LabelModel(2).fit(L).predict_proba(L)
    with pytest.warns(UserWarning, match="ignoring Snorkel SGD option"):
        lm = LabelModel(2).fit(L, n_epochs=10, lr=0.1, optimizer="adam", lr_scheduler="step",
                               prec_init=[0.7] * 5, mu_eps=0.01)
    assert np.array_equal(lm.predict_proba(L), base)
    with pytest.raises(ValueError, match="Unrecognized optimizer option 'bad_opt'"):
        LabelModel(2).fit(L, optimizer="bad_opt")
    with pytest.raises(ValueError, match="Unrecognized lr scheduler option 'bad'"):
        LabelModel(2).fit(L, lr_scheduler="bad")
    with pytest.raises(TypeError, match="prec_init is of type <class 'str'> which is not supported"):
        LabelModel(2).fit(L, prec_init="0.7")
    with pytest.raises(ValueError, match="prec_init must have shape 5"):
        LabelModel(2).fit(L, prec_init=[0.7, 0.7])
    with pytest.raises(ValueError, match="does not support any warmup_unit other than 'epochs'"):
        LabelModel(2).fit(L, lr_scheduler_config={"warmup_steps": 1, "warmup_unit": "batches"})
    # Snorkel code written for a GPU runs as is: the device is ignored, with a warning
    with pytest.warns(UserWarning, match=r"device='cuda:1' is ignored: this label model runs on numpy, on the CPU"):
        gpu = LabelModel(cardinality=2, device="cuda:1")
    assert np.array_equal(gpu.fit(L).predict_proba(L), base)
    class TorchDevice:  # torch.device("cuda") prints as its name
        def __str__(self):
            return "cuda"

    with pytest.warns(UserWarning, match=r"device='cuda' is ignored"):
        LabelModel(cardinality=2, device=TorchDevice())
    with pytest.raises(ValueError, match="device='gpu' is not a torch device Snorkel takes; pass 'cpu'"):
        LabelModel(2, device="gpu")



def test_fit_seed_is_checked_as_the_constructors(binary):
    """``fit(seed=...)`` went through int(): 1.5 became seed 1 silently and "x" failed with int()'s own message."""
    L, _ = binary
    assert LabelModel(2).fit(L, seed=np.int64(3)).seed == 3 and LabelModel(2).fit(L, seed=7).seed == 7
    for bad in (1.5, "x", None, True):
        with pytest.raises(ValueError, match=rf"^seed must be an int, got {re.escape(repr(bad))}$"):
            LabelModel(2).fit(L, seed=bad)

def test_majority_voter_without_fit_leaves_unvoted_rows_unlabeled():
    L = np.array([[0, 0, 1], [-1, -1, -1], [2, -1, -1]])
    assert MajorityLabelVoter(3).predict(L).tolist() == [0, ABSTAIN, 2]
