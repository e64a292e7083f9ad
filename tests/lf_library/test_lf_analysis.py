"""lf_summary from SufficientStats (counts checked by hand on a tiny label matrix)."""

from __future__ import annotations

import numpy as np
import pytest

from labelmodel.stats import stats_from_matrix
from lf_library.analysis import lf_summary

# rows x LFs; -1 = abstain
L = np.array(
    [
        [0, 0, -1],
        [1, 0, -1],
        [-1, 1, 1],
        [-1, -1, 1],
    ]
)


def test_summary_columns_and_values():
    stats = stats_from_matrix(L, 2, lf_names=["lf_a", "lf_b", "lf_c"])
    df = lf_summary(stats, lf_versions={"lf_a": "v1", "lf_b": "v2", "lf_c": "v3"})
    assert list(df.columns) == ["name", "version", "polarity", "coverage", "overlaps", "conflicts"]
    assert df["name"].tolist() == ["lf_a", "lf_b", "lf_c"]
    assert df["version"].tolist() == ["v1", "v2", "v3"]
    assert df["polarity"].tolist() == [[0, 1], [0, 1], [1]]
    assert df["coverage"].tolist() == [0.5, 0.75, 0.5]
    assert df["overlaps"].tolist() == [0.5, 0.75, 0.25]
    assert df["conflicts"].tolist() == [0.25, 0.25, 0.0]


def test_optional_accuracy_and_error_columns():
    stats = stats_from_matrix(L, 2, lf_names=["lf_a", "lf_b", "lf_c"])
    df = lf_summary(stats, gold_accuracy={"lf_b": 0.9}, errors=[0, 3, 1])
    assert list(df.columns) == ["name", "polarity", "coverage", "overlaps", "conflicts", "emp_acc", "errors"]
    assert np.isnan(df["emp_acc"][0]) and df["emp_acc"][1] == 0.9
    assert df["errors"].tolist() == [0, 3, 1]


def test_misaligned_inputs_are_rejected():
    stats = stats_from_matrix(L, 2, lf_names=["lf_a", "lf_b", "lf_c"])
    with pytest.raises(ValueError, match=r"errors has 2 entries for 3 LFs"):
        lf_summary(stats, errors=[1, 2])
    with pytest.raises(ValueError, match=r"gold_accuracy names unknown LF\(s\) \['lf_z'\]"):
        lf_summary(stats, gold_accuracy={"lf_z": 1.0})
    with pytest.raises(ValueError, match=r"lf_versions lacks LF\(s\) \['lf_c'\]"):
        lf_summary(stats, lf_versions={"lf_a": "v", "lf_b": "v"})


def test_snorkel_style_arguments_are_refused_with_the_fix():
    # Snorkel's LFAnalysis(L, lfs).lf_summary() habit: the label matrix, and a list for the versions
    with pytest.raises(TypeError, match=r"not a ndarray: pass stats_from_matrix\(L, cardinality, lf_names\)"):
        lf_summary(L)
    stats = stats_from_matrix(L, 2, lf_names=["lf_a", "lf_b", "lf_c"])
    with pytest.raises(TypeError, match=r"lf_versions must be a dict LF name -> version, not a list"):
        lf_summary(stats, ["v1", "v2", "v3"])


def test_no_rows_gives_nan_fractions():
    stats = stats_from_matrix(np.zeros((0, 2), dtype=int), 2, lf_names=["x", "y"])
    df = lf_summary(stats)
    assert df["polarity"].tolist() == [[], []] and df["coverage"].isna().all()


def test_kind_and_origin_columns():
    stats = stats_from_matrix(np.array([[0, -1], [1, 1]]), cardinality=2, lf_names=["a", "b"])
    df = lf_summary(stats, lf_info={"a": {"kind": "model", "origin": "model models:/m/1"}})
    assert df["kind"].tolist() == ["model", ""] and df["origin"].tolist() == ["model models:/m/1", ""]
