"""A lakehouse an older lakelabel wrote, read by this one (README "Upgrading"): files in their old formats, built
directly rather than by installing the older version. No Spark."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from jobs.runtime.config_loading import config_from_dict
from jobs.runtime.runs import run_dir
from labelmodel import LabelModel

# The label model settings the first release (f1cd334) did not write into label_model.json: added since, they load
# at their defaults.
_ADDED_SINCE_THE_FIRST_RELEASE = ("abstain_evidence", "better_than_chance", "class_balance", "confusion_class_shrink",
                                  "confusion_prior_accuracy", "confusion_prior_pooling", "confusion_prior_strength",
                                  "confusion_vote_share", "label_unvoted")


def _cfg(tmp_path):
    return config_from_dict({"lakehouse": str(tmp_path / "lake"),
                             "source": {"path": str(tmp_path / "src"), "format": "parquet", "id_column": "id"},
                             "lfs": {"label_space": ["a", "b"], "declared": [
                                 {"name": "kw", "kind": "keyword", "label": "a", "field": "t", "keywords": ["x"]}]},
                             "mlflow": {"enabled": False}})


def _first_release_model(folder):
    """label_model.json as the first release saved it, and the version its labels recorded (the hash of that dict)."""
    from jobs.fit_label_model import _plain

    votes = np.array([[0, 1, -1], [0, 0, 1], [1, 1, -1], [1, -1, 1], [0, -1, -1], [0, 0, -1], [1, 1, 1], [-1, 0, 0]])
    # the precision model with the first release's class_balance_trust
    saved = LabelModel(2, method="dawid_skene", class_balance_trust=0.5).fit(votes).to_dict()
    for key in _ADDED_SINCE_THE_FIRST_RELEASE:
        saved["config"].pop(key, None)
    path = folder / "label_model.json"
    path.write_text(json.dumps(saved))
    return path, hashlib.sha256(json.dumps(saved, sort_keys=True, default=_plain).encode()).hexdigest()[:12]


def test_verify_and_explain_read_a_label_model_an_older_lakelabel_saved(tmp_path):
    """verify of a run the first release wrote said `the saved model was replaced, so the run cannot be rebuilt`
    (exit 2): the file loads with the settings added since at their defaults, so the loaded model's hash was not the
    one its labels recorded, though nothing replaced it. The file's content as saved is that version."""
    from jobs.explain import find_model
    from jobs.fit_label_model import model_version
    from jobs.verify import _load_model

    cfg = _cfg(tmp_path)
    folder = run_dir(cfg.lakehouse, "20261124T020100Z-00846d")
    path, version = _first_release_model(folder)
    loaded = LabelModel.load(str(path))
    assert model_version(loaded) != version  # what verify compared, alone
    model, _ = _load_model(cfg, {"label_model": str(path), "label_model_version": version}, folder)
    assert model.to_dict()["params"] == loaded.to_dict()["params"]
    assert find_model(cfg, str(path), version)[1] == str(path)


def test_explain_names_the_classes_of_a_run_that_recorded_no_label_space():
    """A run of the first release has no label space in its record: explain showed its classes as `0 technical 2 3`
    (the row's own label the only name); the apply record of its votes holds the label space."""
    from types import SimpleNamespace

    from jobs.explain import class_names

    space = ("billing", "technical", "shipping", "account")
    row = {"label": 1, "label_name": "technical"}
    record = SimpleNamespace(label_space=())
    assert class_names(record, None, SimpleNamespace(label_space=space), row, 4) == list(space)
    assert class_names(record, None, None, row, 4) == ["0", "technical", "2", "3"]
    assert class_names(SimpleNamespace(label_space=("x", "y")), None, SimpleNamespace(label_space=space), row, 2) == [
        "x", "y"]


def test_verify_and_explain_score_a_first_release_run_as_it_was_scored(tmp_path):
    """The first release scored every row of a precision model against ``log_prior`` (since 07f0532 rows with votes
    against ``train_log_prior``) and labeled rows without votes (since 4796ea5 -1 unless ``label_unvoted``). Its labels
    rebuilt with today's scoring differed on every row (verify: `2192 row(s) with another label, 17808 row(s) with
    another probabilities`, exit 2) and explain's terms did not add up to them; both score as it did. A model this
    lakelabel saved is not rescored."""
    from jobs.fit_label_model import model_version, scored_as_before
    from jobs.verify import _load_model
    from labelmodel.explain import softmax

    cfg = _cfg(tmp_path)
    folder = run_dir(cfg.lakehouse, "20261124T020100Z-00846d")
    path, version = _first_release_model(folder)
    model, _ = _load_model(cfg, {"label_model": str(path), "label_model_version": version}, folder)
    p = model.params_
    assert p.kind == "bump" and not np.allclose(p.train_log_prior, p.log_prior)
    earlier = scored_as_before(model, version, path)
    L = np.array([[0, 1, -1], [1, -1, -1], [-1, -1, -1]])
    then = []
    for row in L:  # log_prior[y] plus the weight of each vote for y
        logits = p.log_prior.copy()
        for j, v in enumerate(row):
            if v >= 0:
                logits[v] += p.weights[j, v]
        then.append(softmax(logits))
    assert np.allclose(earlier.predict_proba(L), then, atol=1e-12)
    assert not np.allclose(model.predict_proba(L), then)
    terms = earlier.explain(L[0])
    assert np.allclose(softmax(terms.logits), then[0], atol=1e-12)
    assert earlier.predict(L[2:])[0] >= 0 and model.predict(L[2:])[0] == -1  # no vote: labeled then, -1 now
    assert scored_as_before(model, model_version(model), path) is None
    model.save(str(folder / "saved_now.json"))  # a file with this lakelabel's settings is not rescored
    assert scored_as_before(model, version, folder / "saved_now.json") is None
