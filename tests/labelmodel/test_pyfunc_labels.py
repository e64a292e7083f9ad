"""The MLflow pyfunc model labels rows as the labels table does (issue 8): unvoted rows -1."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from jobs.runtime.pyfunc_model import LabelModelPyfunc
from labelmodel import LabelModel

from .synthetic import sample_symmetric


def _pyfunc(tmp_path, model, names, **config):
    path = tmp_path / "lm.json"
    model.save(path)
    wrapper = LabelModelPyfunc()
    wrapper.load_context(SimpleNamespace(artifacts={"label_model": str(path)},
                                         model_config={"lf_names": names, "label_space": ["ham", "spam"], **config}))
    return wrapper


def test_unvoted_rows_and_ties_follow_the_model(tmp_path):
    L, _ = sample_symmetric(2000, np.array([0.8, 0.75, 0.7, 0.65]), np.array([0.5, 0.4, 0.4, 0.3]),
                            np.array([0.5, 0.5]), seed=3)
    names = [f"lf_{j}" for j in range(L.shape[1])]
    model = LabelModel(2).fit(L)
    votes = pd.DataFrame(L[:300], columns=names)
    out = _pyfunc(tmp_path, model, names).predict(None, votes)
    expected = model.predict(L[:300])
    unvoted = (L[:300] == -1).all(axis=1)
    assert unvoted.any() and (expected[unvoted] == -1).all()
    np.testing.assert_array_equal(out["label"].to_numpy(), expected)
    assert out.loc[unvoted, "label_name"].isna().all()
    assert (out.loc[~unvoted, "label_name"] == np.array(["ham", "spam"])[expected[~unvoted]]).all()
    np.testing.assert_allclose(out[["p_ham", "p_spam"]].to_numpy(), model.predict_proba(L[:300]))
    # a model configured to label unvoted rows labels them there too
    labelled = LabelModel(2, label_unvoted=True).fit(L)
    out = _pyfunc(tmp_path, labelled, names).predict(None, votes)
    assert (out["label"].to_numpy() >= 0).all()
    # "random" with row ids hashes the ids, as the labels table does
    tied = pd.DataFrame(np.array([[0, 1, -1, -1]] * 4), columns=names).assign(row_id=["a", "b", "c", "d"])
    out = _pyfunc(tmp_path, model, names, tie_break_policy="random").predict(None, tied)
    ids = np.array(["a", "b", "c", "d"], dtype=object)
    np.testing.assert_array_equal(out["label"].to_numpy(),
                                  model.predict(tied[names].to_numpy(), tie_break_policy="random", row_ids=ids))


def test_random_ties_hash_integer_ids_that_pandas_made_floats_as_integers(tmp_path):
    """The labels table hashes an integer id 7 as "7"; the same ids as floats (pandas after a merge) must not hash
    as "7.0". An LF named ``row_id`` is a vote column, never the ids."""
    L, _ = sample_symmetric(2000, np.array([0.8, 0.75, 0.7, 0.65]), np.array([0.5, 0.4, 0.4, 0.3]),
                            np.array([0.5, 0.5]), seed=3)
    names = [f"lf_{j}" for j in range(L.shape[1])]
    model = LabelModel(2, label_unvoted=True).fit(L, class_balance=[0.5, 0.5])
    unvoted = pd.DataFrame(-1, index=range(40), columns=names)  # the uniform prior: every row a tie
    ids = np.arange(1000, 1040)
    expected = model.predict(unvoted.to_numpy(), tie_break_policy="random", row_ids=ids)
    wrapper = _pyfunc(tmp_path, model, names, tie_break_policy="random")
    for column in (ids, ids.astype(float), ids.astype(str)):
        np.testing.assert_array_equal(wrapper.predict(None, unvoted.assign(row_id=column))["label"], expected)
    by_position = model.predict(unvoted.to_numpy(), tie_break_policy="random")
    assert (by_position != expected).any()
    named = _pyfunc(tmp_path, model, names[:-1] + ["row_id"], tie_break_policy="random")
    np.testing.assert_array_equal(named.predict(None, unvoted.set_axis(names[:-1] + ["row_id"], axis=1))["label"],
                                  by_position)
