"""LabelingFunction, @labeling_function, row objects and canonical JSON (no Spark)."""

from __future__ import annotations

import functools
import re
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest

from lf_library import ABSTAIN, LabelingFunction, LFConfigError, LFError, labeling_function
from lf_library.core import canonical_json, make_row


def test_bare_and_called_decorator_build_lfs_named_after_the_function():
    @labeling_function
    def lf_bare(x):
        return 1

    @labeling_function(name="renamed", fields=["text"], resources={"word": "hi"})
    def lf_called(x, word):
        return 0 if word in x.text else ABSTAIN

    assert isinstance(lf_bare, LabelingFunction)
    assert (lf_bare.name, lf_bare.kind, lf_bare.fields, lf_bare.resources) == ("lf_bare", "python", None, {})
    assert (lf_called.name, lf_called.fields, lf_called.resources) == ("renamed", ("text",), {"word": "hi"})
    assert lf_called({"text": "hi there"}) == 0
    assert lf_called({"text": "bye"}) == ABSTAIN
    assert lf_bare.label_space is None


def test_row_gives_attribute_and_item_access_and_names_missing_columns():
    row = make_row({"text": "hello", "author": "bob", "my col": 3})
    assert row.text == "hello" and row["author"] == "bob" and row["my col"] == 3
    assert row.get("nope", 7) == 7 and "text" in row and row.keys() == ("text", "author", "my col")
    assert row.asDict() == {"text": "hello", "author": "bob", "my col": 3}
    with pytest.raises(AttributeError, match=r"row has no column 'txt'; available columns: 'text', 'author', 'my col'"):
        row.txt
    with pytest.raises(KeyError, match=r"row has no column 'txt'"):
        row["txt"]
    assert getattr(row, "txt", None) is None


def test_row_helper_methods_never_shadow_a_column():
    row = make_row({"get": "column value", "keys": 1})
    assert row.get == "column value" and row.keys == 1


def test_call_accepts_pandas_series_and_checks_the_vote():
    @labeling_function(label_space=["a", "b", "c"])
    def lf_seven(x):
        return 7

    @labeling_function()
    def lf_len(x):
        return 1 if len(x.text) > 3 else ABSTAIN

    assert lf_len(pd.Series({"text": "long text"})) == 1
    with pytest.raises(LFError, match=r"LF 'lf_seven' returned 7; label space is 0\.\.2 \(a, b, c\)"):
        lf_seven({"text": "x"})


def test_call_on_a_dataframe_says_how_to_vote_on_one():
    """An operator drill (session 18): a two-row DataFrame was read as one row and a vectorized
    LF returned one int, silently."""

    @labeling_function(vectorized=True, label_space=["short", "long"])
    def lf_vec(df):
        return (df["text"].str.len() < 5).map({True: 0, False: -1})

    @labeling_function(label_space=["short", "long"])
    def lf_row(x):
        return 0 if len(x.text) < 5 else -1

    df = pd.DataFrame({"text": ["a long long text here", "hi"]})
    with pytest.raises(LFError, match=r"LF 'lf_vec' votes on one row .*not a DataFrame; lf\.f\(df\) returns"):
        lf_vec(df)
    with pytest.raises(LFError, match=r"LF 'lf_row' votes on one row .*df\.apply\(lf, axis=1\)"):
        lf_row(df)
    assert lf_vec.f(df).tolist() == [-1, 0] and df.apply(lf_row, axis=1).tolist() == [-1, 0]
    assert lf_vec({"text": "hi"}) == 0  # one row still works
    # a class name from a Python LF: the error gives its id
    @labeling_function(label_space=["short", "long"])
    def lf_name(x):
        return "long"

    with pytest.raises(LFError, match=r"returned 'long' \(str\), a class name; return its id 1 \(LABEL_SPACE.index\('long'\)\)"):
        lf_name({"text": "x"})


def test_call_rejects_non_int_votes():
    @labeling_function()
    def lf_str(x):
        return "spam"

    @labeling_function()
    def lf_bool(x):
        return True

    with pytest.raises(LFError, match=r"returned 'spam' \(str\); expected an int class id"):
        lf_str({"text": "x"})
    with pytest.raises(LFError, match=r"returned True \(bool\)"):
        lf_bool({"text": "x"})


def test_vectorized_lf_gets_a_dataframe():
    @labeling_function(vectorized=True, fields=["n"])
    def lf_big(df):
        assert list(df.columns) == ["n"]
        return np.where(df["n"] > 10, 1, ABSTAIN)

    assert lf_big.kind == "vectorized" and lf_big.vectorized
    assert lf_big({"n": 11, "other": "x"}) == 1
    assert lf_big({"n": 1, "other": "x"}) == ABSTAIN


def test_fields_restrict_what_a_dict_row_exposes():
    @labeling_function(fields=["text"])
    def lf_reads_author(x):
        return 1 if x.author else 0

    with pytest.raises(AttributeError, match=r"no column 'author'; available columns: 'text'"):
        lf_reads_author({"text": "t", "author": "bob"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, r"an LF name must be a non-empty string"),
        ({"name": "bad\nname"}, r"LF name 'bad\\nname' is invalid"),
        # Names MLflow refuses as param keys (lf.<name>) stop here, not after the apply commits (a drill: exit 1).
        ({"name": "kw giveaway!"}, r"^LF name 'kw giveaway!' is invalid: it has character\(s\) '!'; use letters, "
                                   r"digits, spaces and _ - \. : / \(MLflow logs each LF's version as the param "
                                   r"lf\.<name>\), e\.g\. 'kw_subscribe'$"),
        ({"name": "kw, x"}, r"it has character\(s\) ','"),
        ({"name": "kw//spam"}, r"it has a path that is not normal"),
        ({"name": "kw/"}, r"it has a path that is not normal"),
        ({"label_space": ["only"]}, r"needs at least two classes"),
        ({"label_space": "ab"}, r"must be a sequence of class names"),
        ({"label_space": ["a", "a"]}, r"distinct class names; duplicated: \['a'\]"),
        ({"resources": {"not valid": 1}}, r"resource keys must be Python identifiers"),
        ({"fields": [1]}, r"fields must be a list of column names"),
    ],
)
def test_invalid_arguments_name_the_problem(kwargs, message):
    args = {"name": "lf_x", **kwargs}
    with pytest.raises(LFConfigError, match=message):
        LabelingFunction(args.pop("name"), lambda x: 1, **args)


def test_names_mlflow_takes_are_accepted():
    import mlflow.utils.validation as validation

    for name in ("kw_subscribe", "kw giveaway", "kw/spam", "kw:1", "lf-1.2", "étiquette_été", "词_spam"):
        assert LabelingFunction(name, lambda x: 1).name == name
        validation._validate_param_name(f"lf.{name}")  # raises where MLflow would refuse the param
    # A slice's name is never an MLflow key: it keeps any name (a review: `length > 100` was refused as an LF's).
    from lf_library.slicing import SlicingFunction

    assert SlicingFunction("length > 100", lambda x: True).name == "length > 100"


def test_unversionable_resource_names_lf_and_key():
    with pytest.raises(TypeError, match=r"LF 'lf_obj': resource 'model' is an object, which cannot be versioned"):
        LabelingFunction("lf_obj", lambda x, model: 1, resources={"model": object()})
    with pytest.raises(TypeError, match=r"resource 'cfg'\['inner'\]\[1\] is an object"):
        LabelingFunction("lf_obj", lambda x, cfg: 1, resources={"cfg": {"inner": [1, object()]}})


def test_resource_objects_can_declare_their_own_version():
    class Model:
        __lakelabel_version__ = "model-v3"

    lf = LabelingFunction("lf_model", lambda x, model: 1, resources={"model": Model()})
    assert len(lf.version) == 12


def test_unversionable_closure_variable_asks_for_a_resource():
    model = object()

    with pytest.raises(TypeError, match=r"LF 'lf_closure': closure variable 'model' holds an object.*pass it as a resource"):

        @labeling_function()
        def lf_closure(x):
            return 1 if model else 0


def test_canonical_json_sorts_sets_and_describes_regex_and_numpy():
    assert canonical_json({"b": {3, 1, 2}, "a": (1, 2.5)}) == '{"a":[1,2.5],"b":{"$set":[1,2,3]}}'
    assert canonical_json(re.compile("ab+", re.I)) == '{"$regex":"ab+","flags":%d}' % int(re.compile("ab+", re.I).flags)
    assert canonical_json(np.array([1, 2], dtype=np.int32)) == '{"$array":[1,2],"dtype":"<i4","shape":[2]}'
    assert canonical_json({1: "x"}) == '{"$items":[[1,"x"]]}'
    assert canonical_json(float("nan")) == '{"$float":"nan"}'
    with pytest.raises(TypeError, match=r"value\[0\] of type object has no canonical JSON form"):
        canonical_json([object()])


def test_lfs_without_source_fall_back_to_a_bytecode_description():
    namespace: dict = {}
    exec("def lf_dyn(x):\n    return 1\n", namespace)  # no file: inspect.getsource fails
    a = LabelingFunction("lf_dyn", namespace["lf_dyn"])
    exec("def lf_dyn(x):\n    return 0\n", namespace)
    b = LabelingFunction("lf_dyn", namespace["lf_dyn"])
    assert len(a.version) == 12 and a.version != b.version


def test_lfs_survive_cloudpickle_with_their_versions():
    import pickle

    from pyspark import cloudpickle  # what ships LFs to executors

    @labeling_function(fields=["text"], resources={"words": {"a", "b"}})
    def lf_words(x, words):
        return 1 if x.text in words else ABSTAIN

    lf_words.label_space = ["x", "y"]
    back = pickle.loads(cloudpickle.dumps(lf_words))
    assert back.version == lf_words.version and back({"text": "a"}) == 1


def test_snorkel_preprocessors_get_a_readable_error():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'pre'; lakelabel has no preprocessors: compute "
                                        r"the field inside the LF, or write a vectorized LF"):
        labeling_function(pre=[lambda x: x])
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'feilds'; its keywords are name, label_space"):
        labeling_function(feilds=["text"])


def test_resources_that_the_function_cannot_take_fail_where_the_lf_is_defined():
    # before: accepted, then a TypeError on every row (an error record each, or a failed job)
    with pytest.raises(LFConfigError, match=r"LF 'lf_words': its function\(x\) cannot be called as f\(x, \*\*resources\) "
                                           r"with resources \['words'\] \(got an unexpected keyword argument 'words'\); "
                                           r"define it as def lf_words\(x, words\)"):
        @labeling_function(resources={"words": ["a"]})
        def lf_words(x):
            return ABSTAIN
    with pytest.raises(LFConfigError, match=r"missing a required argument: 'words'"):
        LabelingFunction("no_resources", lambda x, words: ABSTAIN)
    with pytest.raises(LFConfigError, match=r"define it as def short\(df, n\)"):
        @labeling_function(vectorized=True, resources={"n": 3})
        def short(df):
            return df
    assert LabelingFunction("ok", lambda x, **kw: 1, resources={"a": 1}).resources == {"a": 1}
    # What is called is checked, not what it wraps (a review: both were refused): an LF as another LF's function,
    # and a functools.wraps decorator that supplies the argument.
    @labeling_function(resources={"words": ["free"]})
    def lf_a(x, words):
        return 1 if any(w in x.text for w in words) else ABSTAIN

    def with_words(fn):
        @functools.wraps(fn)
        def wrapper(x):
            return fn(x, words=["free"])
        return wrapper

    @with_words
    def lf_b(x, words):
        return 1 if any(w in x.text for w in words) else ABSTAIN

    cached = functools.lru_cache(maxsize=None)(lambda x: ABSTAIN)  # a C wrapper: checked through what it wraps
    with pytest.raises(LFConfigError, match=r"got an unexpected keyword argument 'nope'"):
        LabelingFunction("cached", cached, resources={"nope": 1})
    assert LabelingFunction("cached_b", functools.lru_cache(maxsize=None)(lf_b))  # one level: lf_b supplies words

    def logged(fn):  # a pass-through (*args, **kwargs) wrapper: checked through what it passes to
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
        return wrapper

    with pytest.raises(LFConfigError, match=r"got an unexpected keyword argument 'words'"):
        @labeling_function(resources={"words": ["a"]})
        @logged
        def lf_c(x):
            return ABSTAIN

    def looped(*args, **kwargs):  # a __wrapped__ that leads back to itself: checked once, not for ever
        return ABSTAIN

    looped.__wrapped__ = looped
    assert LabelingFunction("looped", looped, resources={"words": ["a"]})
    Row = namedtuple("Row", "text")
    assert [LabelingFunction("renamed", lf_a)(Row("free stuff")), LabelingFunction("lf_b", lf_b)(Row("free"))] == [1, 1]


def test_a_label_space_yaml_read_as_booleans_says_to_quote_it():
    import yaml

    from lf_library.core import check_label_space

    with pytest.raises(LFConfigError, match=r"bad entries: \[False, True\]; quote them in YAML \('no', 'yes'\)"):
        check_label_space(yaml.safe_load("[no, yes]"), owner="tasks.refund.label_space")
