"""Slicing functions: decorator and declarative slices, versions, evaluation on Arrow batches, loading."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from lf_library import keyword_lf, keyword_slice, regex_slice, slicing_function, sql_slice
from lf_library.errors import ConfigError, LFConfigError
from lf_library.slicing import SlicingFunction, evaluate_slices, load_slices

TEXTS = ["I can't log in", "Login fails", "blogging is fun", "LOG IN please!!", None, "café login"]


def test_keyword_slice_matches_like_the_keyword_lf():
    batch = pa.table({"text": pa.array(TEXTS, pa.string())})
    sl = keyword_slice("login", ["login", "log in"])
    lf = keyword_lf("kw_login", ["login", "log in"], 1, label_space=["a", "b"])
    mask, bad, example = sl.evaluate_arrow(batch)
    assert mask.tolist() == (lf.evaluate_arrow(batch) == 1).tolist() == [True, True, False, True, False, True]
    assert (bad, example) == (0, None)
    assert sl({"text": "please log in"}) is True and sl({"text": "blog"}) is False


def test_regex_slice_and_case():
    batch = pa.table({"text": pa.array(TEXTS, pa.string())})
    assert regex_slice("shout", r"!{2,}").evaluate_arrow(batch)[0].tolist() == [False, False, False, True, False, False]
    assert regex_slice("cap", r"^L", case_sensitive=True).evaluate_arrow(batch)[0].tolist() == [
        False, True, False, True, False, False]
    with pytest.raises(LFConfigError, match=r"does not compile as an RE2 regex"):
        regex_slice("bad", r"(?<=x)y")


def test_python_slice_counts_non_booleans_and_exceptions():
    @slicing_function(fields=["text"])
    def odd(x):
        if x.text is None:
            raise ValueError("no text")
        return "yes" if "!!" in x.text else len(x.text) > 12

    batch = pa.table({"text": pa.array(TEXTS, pa.string()), "other": pa.array(range(len(TEXTS)))})
    mask, bad, example = odd.evaluate_arrow(batch)
    assert mask.tolist() == [True, False, True, False, False, False]
    assert bad == 2 and example == "returned 'yes' (str)"
    with pytest.raises(LFConfigError, match=r"slice 'odd' returned 'yes' \(str\); return True or False"):
        odd({"text": "hey!!"})
    assert odd.kind == "python" and odd.name == "odd"


def test_numpy_bools_are_booleans():
    sl = SlicingFunction("np_bool", lambda x: np.bool_(x.n > 1))
    mask, bad, _ = sl.evaluate_arrow(pa.table({"n": [0, 2, 3]}))
    assert mask.tolist() == [False, True, True] and bad == 0


def test_evaluate_slices_uses_precomputed_sql_columns():
    sl = [sql_slice("phone", "channel = 'phone'"), keyword_slice("login", ["login"])]
    batch = pa.table({"text": ["login", "x", "login"], "__s0": pa.array([True, None, False])})
    masks, problems = evaluate_slices(sl, batch, {"phone": "__s0"})
    assert masks.tolist() == [[True, True], [False, False], [False, True]]
    assert problems == [(0, None), (0, None)]
    with pytest.raises(LFConfigError, match=r"sql slice; evaluate it with spark_column\(\)"):
        sl[0]({"channel": "phone"})


def test_versions_are_stable_and_track_the_code():
    a = keyword_slice("login", ["login", "log in"])
    assert a.version == keyword_slice("login", ["log in", "login"]).version  # order does not matter
    assert a.version != keyword_slice("login", ["login"]).version
    assert a.version != keyword_slice("login2", ["login", "log in"]).version
    assert sql_slice("s", "a = 1").version != sql_slice("s", "a = 2").version

    def make(threshold):
        @slicing_function(name="long", resources={"n": threshold})
        def long(x, n):
            return len(x.text) > n

        return long

    assert make(10).version == make(10).version != make(20).version
    code = ("from lf_library import keyword_slice; "
            "print(keyword_slice('login', ['login', 'log in']).version)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == a.version  # another process, another hash seed


def test_load_slices(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "slices_a.py").write_text(
        "from lf_library import keyword_slice, sql_slice\n"
        "b = sql_slice('b_slice', 'x > 1')\na = keyword_slice('a_slice', ['x'])\nalias = a\n")
    (tmp_path / "slices_dup.py").write_text("from lf_library import sql_slice\nb = sql_slice('b_slice', 'x > 2')\n")
    (tmp_path / "slices_none.py").write_text("X = 1\n")
    assert [s.name for s in load_slices(["slices_a"])] == ["a_slice", "b_slice"]
    with pytest.raises(ConfigError, match=r"slice names must be unique; 'b_slice' is defined in slices_a and in slices_dup"):
        load_slices(["slices_a", "slices_dup"])
    with pytest.raises(ConfigError, match=r"slice module 'slices_none' defines no SlicingFunction"):
        load_slices(["slices_none"])
    with pytest.raises(ConfigError, match=r"slice module 'slices_missing' \(slices.modules\) failed to import: "
                                          r"ModuleNotFoundError"):
        load_slices(["slices_missing"])
    assert load_slices([]) == ()


def test_shipped_slice_modules_load():
    assert [s.name for s in load_slices(["lf_library.lfs.demo_slices"])] == ["free_tier_chat", "mentions_login"]
    (long_comment,) = load_slices(["lf_library.lfs.youtube_slices"])
    assert long_comment({"CONTENT": "x" * 201}) is True and long_comment({"CONTENT": "short"}) is False
