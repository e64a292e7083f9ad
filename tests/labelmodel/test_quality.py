"""The default's two routes (confusion model for crowd-style matrices, precision EM for
one-class LFs), how dev labels enter the fit, and the quality targets on the real tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelmodel import LabelModel, MajorityLabelVoter, stats_from_matrix
from labelmodel._votes import VoteTable
from labelmodel.confusion import confusion_em, multi_class_vote_share
from labelmodel.model import expected_accuracy

from .synthetic import sample_symmetric, sample_unipolar

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def sample_crowd(n: int, n_workers: int, per_item: int, balance: np.ndarray, confusions: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Crowd answers: each item gets ``per_item`` distinct workers; worker ``w`` answers
    class ``v`` for an item of class ``y`` with probability ``confusions[w, y, v]``."""
    rng = np.random.default_rng(seed)
    k = len(balance)
    y = rng.choice(k, size=n, p=balance)
    L = np.full((n, n_workers), -1)
    for i in range(n):
        for w in rng.choice(n_workers, size=per_item, replace=False):
            L[i, w] = rng.choice(k, p=confusions[w, y[i]])
    return L, y


def biased_crowd(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary, 10% positives, 60 workers, 3 answers per item; a third of the workers say
    "1" far too easily (what a single precision per vote cannot tell from a good worker)."""
    rng = np.random.default_rng(seed)
    W = 60
    conf = np.empty((W, 2, 2))
    for w in range(W):
        fp = rng.uniform(0.25, 0.4) if w % 3 == 0 else rng.uniform(0.0, 0.05)
        fn = rng.uniform(0.05, 0.2)
        conf[w] = [[1 - fp, fp], [fn, 1 - fn]]
    return sample_crowd(n, W, 3, np.array([0.9, 0.1]), conf, seed)


def test_auto_routes_by_the_share_of_votes_from_multi_class_lfs():
    lf_class = np.repeat(np.arange(3), 4)
    L_uni, _ = sample_unipolar(3000, lf_class, np.full(12, 0.3), np.full(12, 0.02), np.full(3, 1 / 3), seed=0)
    L_sym, _ = sample_symmetric(3000, np.full(6, 0.75), np.full(6, 0.6), np.full(3, 1 / 3), seed=0)
    assert multi_class_vote_share(stats_from_matrix(L_uni, 3)) == 0.0
    assert multi_class_vote_share(stats_from_matrix(L_sym, 3)) == 1.0
    uni, sym = LabelModel(3).fit(L_uni), LabelModel(3).fit(L_sym)
    assert uni.fit_info_["chosen"] == "dawid_skene" and sym.fit_info_["chosen"] == "confusion"
    assert LabelModel(3, confusion_vote_share=0.0).fit(L_uni).fit_info_["chosen"] == "confusion"
    with pytest.raises(ValueError, match="confusion_vote_share must be in"):
        LabelModel(3, confusion_vote_share=1.5)


def test_confusion_em_over_patterns_equals_em_over_rows():
    L, _ = biased_crowd(1500, seed=1)
    stats = stats_from_matrix(L, 2)
    kw = dict(prior_strength=1.0, prior_accuracy=0.7, class_shrink=0.03, max_iter=300, tol=1e-9)
    pat = confusion_em(VoteTable.from_stats(stats), **kw)
    rows = confusion_em(VoteTable.from_matrix(L, 2), **kw)
    assert len(stats.patterns) < len(L)
    np.testing.assert_allclose(pat["log_conf"], rows["log_conf"], atol=1e-8)
    np.testing.assert_allclose(pat["log_prior"], rows["log_prior"], atol=1e-10)


def test_confusion_model_sees_workers_that_say_one_too_easily():
    L_all, y_all = biased_crowd(6000, seed=2)
    L, L_test, y_test = L_all[:4000], L_all[4000:], y_all[4000:]
    lm = LabelModel(2).fit(L)
    assert lm.fit_info_["chosen"] == "confusion"
    ours = expected_accuracy(lm.predict_proba(L_test), y_test)
    mv = expected_accuracy(MajorityLabelVoter(2).fit(L).predict_proba(L_test), y_test)
    # the precision model reads the lenient workers' "1" as evidence (with the balance held
    # at uniform, em_class_balance="uniform", it does about as well as the confusion model here)
    prec = expected_accuracy(LabelModel(2, method="dawid_skene").fit(L).predict_proba(L_test), y_test)
    assert ours > mv + 0.02 and ours > prec + 0.01, (ours, mv, prec)
    # the lenient workers' "1" is estimated to be wrong on most negatives they see
    C = lm.confusion_[:, 1:, :]  # [j, vote, class]
    lenient = np.arange(0, 60, 3)
    assert np.median(C[lenient, 1, 0] / C[lenient].sum(axis=1)[:, 0]) > 0.15


def test_confusion_fit_is_deterministic_and_round_trips(tmp_path):
    L, _ = biased_crowd(1000, seed=4)
    a, b = LabelModel(2).fit(L), LabelModel(2).fit(L)
    np.testing.assert_array_equal(a.predict_proba(L), b.predict_proba(L))
    a.save(tmp_path / "lm.json")
    c = LabelModel.load(tmp_path / "lm.json")
    np.testing.assert_allclose(c.predict_proba(L), a.predict_proba(L), atol=1e-12)
    np.testing.assert_allclose(a.confusion_.sum(axis=1), 1.0)


def test_duplicate_worker_column_counts_once():
    L, _ = biased_crowd(1500, seed=5)
    dup = np.concatenate([L, L[:, :1]], axis=1)
    one, two = LabelModel(2).fit(L), LabelModel(2).fit(dup)
    np.testing.assert_allclose(two.predict_proba(dup), one.predict_proba(L), atol=1e-9)


def test_fewer_than_50_dev_labels_are_not_used():
    L, y = biased_crowd(2000, seed=6)
    unsup = LabelModel(2).fit(L[40:])
    lm = LabelModel(2).fit(L[40:], L_dev=L[:40], Y_dev=y[:40])
    assert lm.fit_info_["dev_use"].startswith("unused (40 dev labels < 50")
    np.testing.assert_array_equal(lm.predict_proba(L), unsup.predict_proba(L))


def test_dev_labels_missing_a_class_are_handled():
    L, y = sample_symmetric(3000, np.full(6, 0.7), np.full(6, 0.5), np.array([0.4, 0.4, 0.2]), seed=7)
    keep = np.flatnonzero(y != 2)[:200]
    lm = LabelModel(3).fit(L[300:], L_dev=L[keep], Y_dev=y[keep])
    assert lm.fit_info_["dev_missing_classes"] == [2]
    p = lm.predict_proba(L)
    assert np.isfinite(p).all() and (p.argmax(axis=1) == 2).any()  # class 2 is still predicted


def test_dev_labels_help_on_a_biased_crowd():
    L_all, y_all = biased_crowd(8000, seed=8)
    L, y, L_test, y_test = L_all[:6000], y_all[:6000], L_all[6000:], y_all[6000:]
    unsup = LabelModel(2).fit(L[1000:])
    dev = LabelModel(2).fit(L[1000:], L_dev=L[:1000], Y_dev=y[:1000])
    info = dev.fit_info_
    assert info["dev_use"] in ("labeled rows in EM",) or info["dev_use"].startswith(("unused (cross-fitted", "unused (the dev labels change no"))
    a_un = expected_accuracy(unsup.predict_proba(L_test), y_test)
    a_dev = expected_accuracy(dev.predict_proba(L_test), y_test)
    assert a_dev >= a_un - 0.005, (a_un, a_dev, info["dev_use"])


# --------------------------------------------------------------------------- real tasks
def _load(folder: Path) -> dict:
    def votes(name: str, drop: set = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        d = json.loads((folder / name).read_text())
        ids = [i for i in d if i not in drop]
        L = np.array([d[i]["weak_labels"] for i in ids], dtype=np.int64)
        y = np.array([-1 if d[i]["label"] is None else d[i]["label"] for i in ids], dtype=np.int64)
        return L, y

    drop = set()
    if (folder / "labeled_ids.json").is_file():
        drop = set(json.loads((folder / "labeled_ids.json").read_text())["labeled_ids"])
    L_train, _ = votes("train.json", drop)
    L_test, y_test = votes("test.json")
    k = len(json.loads((folder / "label.json").read_text()))
    return {"k": k, "L_train": L_train, "L_test": L_test, "y_test": y_test}


@pytest.mark.slow
def test_default_on_the_real_tasks():
    """Regression guard on the 13 real tasks (see benchmarks/bench_quality.py for the table)."""
    if not (DATA / "labelmatrices").is_dir() or not (DATA / "wrench").is_dir():
        pytest.skip(f"real task data not found under {DATA} (../shared/data next to the checkout)")
    ours, mv = {}, {}
    folders = [DATA / "wrench" / "youtube", DATA / "wrench" / "trec"]
    folders += sorted(p for p in (DATA / "labelmatrices").iterdir() if (p / "train.json").is_file())
    for f in folders:
        t = _load(f)
        lm = LabelModel(t["k"]).fit(t["L_train"])
        ours[f.name] = 100 * expected_accuracy(lm.predict_proba(t["L_test"]), t["y_test"])
        mv[f.name] = 100 * expected_accuracy(MajorityLabelVoter(t["k"]).fit(t["L_train"]).predict_proba(t["L_test"]), t["y_test"])
    # youtube: max(MV 81.6, snorkel 84.0) - 1 (87.2 before issue 8, with half-trusted class
    # balance, which the leave-one-task-out protocol did not keep); trec: 64.4 before
    assert ours["youtube"] >= 83.0 and ours["trec"] >= 64.4, ours
    crowd = [n for n in ours if n not in ("youtube", "trec")]
    assert len(crowd) == 11
    assert all(ours[n] >= mv[n] - 1.0 for n in crowd), {n: (ours[n], mv[n]) for n in crowd}
    assert np.mean([ours[n] for n in crowd]) >= np.mean([mv[n] for n in crowd]) + 3.0
