"""LF versions: 12 hex chars, stable across processes, sensitive to what the LF computes."""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from lf_library import LabelingFunction, keyword_lf, labeling_function, lexicon_lf, regex_lf, sql_lf

MODULE = '''
import re
from lf_library import ABSTAIN, labeling_function, keyword_lf, lexicon_lf

THRESHOLD = {threshold}

def _clean(text):
    return text.strip().lower(){helper_extra}

{decorator}
def lf_spam(x, words, pattern):
    # votes spam on spammy words
    if any(w in _clean(x.text) for w in words) and len(x.text) > THRESHOLD:
        return {vote}
    return ABSTAIN

kw = keyword_lf("kw", ["subscribe", "check out"], "spam")
lex = lexicon_lf("lex", {{"spam": ["free", "win"], "ham": ["song"]}})
'''

DEFAULTS = {
    "threshold": 3,
    "helper_extra": "",
    "decorator": '@labeling_function(resources={"words": {"free", "win", "prize"}, "pattern": re.compile("a+")})',
    "vote": 1,
}


def _write_module(tmp_path, **changes) -> str:
    name = f"lfmod_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(MODULE.format(**{**DEFAULTS, **changes}))
    return name


@pytest.fixture
def load(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []

    def _load(**changes):
        name = _write_module(tmp_path, **changes)
        names.append(name)
        mod = importlib.import_module(name)
        for lf in (mod.lf_spam, mod.kw, mod.lex):
            lf.label_space = ("ham", "spam")
        return mod

    yield _load
    for name in names:
        sys.modules.pop(name, None)


def _versions_in_subprocess(tmp_path, module: str, hashseed: str) -> list[str]:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import {module} as m
        for lf in (m.lf_spam, m.kw, m.lex):
            lf.label_space = ("ham", "spam")
        print(m.lf_spam.version, m.kw.version, m.lex.version)
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.split()


def test_versions_are_12_hex_and_equal_in_other_processes(load, tmp_path):
    mod = load()
    here = [mod.lf_spam.version, mod.kw.version, mod.lex.version]
    assert all(len(v) == 12 and int(v, 16) >= 0 for v in here)
    # Different hash seeds shuffle set iteration order; the canonical form sorts it away.
    assert _versions_in_subprocess(tmp_path, mod.__name__, "1") == here
    assert _versions_in_subprocess(tmp_path, mod.__name__, "987") == here


def test_same_source_in_another_module_has_the_same_version(load):
    assert load().lf_spam.version == load().lf_spam.version


@pytest.mark.parametrize(
    "change",
    [
        {"vote": 0},  # function body
        {"decorator": '@labeling_function(resources={"words": {"free", "win"}, "pattern": re.compile("a+")})'},
        {"decorator": '@labeling_function(resources={"words": {"free", "win", "prize"}, "pattern": re.compile("a+", re.I)})'},
        {"decorator": '@labeling_function(name="lf_other", resources={"words": {"free", "win", "prize"}, "pattern": re.compile("a+")})'},
        {"threshold": 4},  # a module constant the LF reads
        {"helper_extra": ".replace('0', 'o')"},  # a same-module helper the LF calls
    ],
    ids=["body", "resource", "regex_flags", "name", "module_constant", "helper"],
)
def test_version_changes_with_what_the_lf_computes(load, change):
    assert load(**change).lf_spam.version != load().lf_spam.version


def test_version_ignores_line_positions_and_decorator_layout(load, tmp_path):
    base = load()
    name = f"lfmod_{uuid.uuid4().hex[:10]}"
    source = MODULE.format(**DEFAULTS).replace(
        DEFAULTS["decorator"],
        '\n\n@labeling_function(\n    resources={"words": {"free", "win", "prize"},\n               "pattern": re.compile("a+")},\n)',
    )
    (tmp_path / f"{name}.py").write_text(source)
    try:
        moved = importlib.import_module(name)
        moved.lf_spam.label_space = ("ham", "spam")
        assert moved.lf_spam.version == base.lf_spam.version
    finally:
        sys.modules.pop(name, None)


def test_version_changes_with_label_space_and_is_cached_per_label_space():
    lf = LabelingFunction("lf_a", lambda x: 1)
    unset = lf.version
    lf.label_space = ["ham", "spam"]
    two = lf.version
    lf2 = LabelingFunction("lf_a", lambda x: 1, label_space=["ham", "spam", "other"])
    assert len({unset, two, lf2.version}) == 3
    assert lf.version == two


def test_closure_values_are_part_of_the_version():
    def make(word):
        @labeling_function(name="lf_word")
        def lf(x):
            return 1 if word in x.text else -1

        return lf

    assert make("free").version != make("win").version
    assert make("free").version == make("free").version


def test_builder_versions_hash_the_spec():
    a = keyword_lf("kw", ["b", "a"], 1, label_space=["x", "y"])
    assert a.version == keyword_lf("kw", ["a", "b", "a"], 1, label_space=["x", "y"]).version  # order, dupes
    assert a.version != keyword_lf("kw", ["a", "b"], 0, label_space=["x", "y"]).version
    assert a.version != keyword_lf("kw", ["a", "b"], 1, whole_word=False, label_space=["x", "y"]).version
    assert a.version != keyword_lf("kw2", ["a", "b"], 1, label_space=["x", "y"]).version
    assert regex_lf("r", "a+", 1).version != regex_lf("r", "a+", 1, case_sensitive=True).version
    assert sql_lf("s", "n > 1", 1).version != sql_lf("s", "n > 2", 1).version
    assert lexicon_lf("l", {0: ["a"], 1: ["b"]}).version != lexicon_lf("l", {0: ["b"], 1: ["a"]}).version
    assert a.spec == {
        "kind": "keyword",
        "keywords": ["a", "b"],
        "label": 1,
        "field": "text",
        "case_sensitive": False,
        "whole_word": True,
    }


def test_a_keyword_lf_knows_the_version_an_older_lakelabel_gave_it():
    """Votes written before keyword matching moved to NFC, or before it folded whitespace and apostrophes, carry
    the semantics-1 or -2 version: an upgraded lakelabel names them, so a stage or analyze can say the LF was not
    edited."""
    from lf_library import LFRegistry

    reg = LFRegistry(label_space=["ham", "spam"])
    reg.register(keyword_lf("kw_free", ["free", "win"], label="spam", field="text"))
    reg.register(regex_lf("re_link", r"https?://", label="spam", field="text"))
    # '76a99a9f2e9b': what lakelabel at 5413798 (session 13) stored for kw_free, 'a6a1cb45cc2c' what it stored from
    # session 21 to session 39 (896dbb7); regex matching never changed
    assert reg.earlier_versions == {"kw_free": ("76a99a9f2e9b", "a6a1cb45cc2c")}
    assert reg.versions["re_link"] == "15d57bae2fbb"
    assert reg.versions["kw_free"] != "76a99a9f2e9b"


DEFAULT_ARGS_MODULE = '''
import functools
from lf_library import ABSTAIN, labeling_function

WORDS = {words!r}

def _has(text, words):
    return any(w in text for w in words)

@labeling_function(fields=["text"], label_space=("ham", "spam"))
def lf_default(x, words=WORDS):
    return 1 if any(w in x.text for w in words) else ABSTAIN

HAS = functools.partial(_has, words={words!r})

@labeling_function(fields=["text"], label_space=("ham", "spam"))
def lf_partial(x):
    return 1 if HAS(x.text) else ABSTAIN
'''


def _with_words(tmp_path, monkeypatch, template: str, read):
    """``read(module)`` of ``template`` imported with WORDS ["free"], then with ["free", "win"]."""
    monkeypatch.syspath_prepend(str(tmp_path))
    out = []
    for words in (["free"], ["free", "win"]):
        name = f"lfmod_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(template.format(words=words))
        out.append(read(importlib.import_module(name)))
        sys.modules.pop(name, None)
    return out


def test_default_arguments_and_partials_are_part_of_the_version(tmp_path, monkeypatch):
    """``def lf(x, words=WORDS)`` binds WORDS when the def runs: the source names it, the code never loads it,
    so an edit of WORDS changed no version and an incremental run kept the stale votes (drill, session 38)."""
    versions = _with_words(tmp_path, monkeypatch, DEFAULT_ARGS_MODULE,
                           lambda mod: (mod.lf_default.version, mod.lf_partial.version))
    assert versions[0][0] != versions[1][0]
    assert versions[0][1] != versions[1][1]


REVIEW_MODULE = '''
import dataclasses
import functools
import pandas as pd
from lf_library import ABSTAIN, labeling_function

WORDS = {words!r}

def norm(s, words=WORDS):
    return any(w in s for w in words)

@labeling_function(fields=["text"], label_space=("ham", "spam"))
def lf_helper(x):
    return 1 if norm(x.text) else ABSTAIN

@labeling_function(fields=["text"], label_space=("ham", "spam"))
def lf_library_default(x, isna=pd.isna, read=pd.read_csv):
    return ABSTAIN

@dataclasses.dataclass
class Rule:
    words: list = dataclasses.field(default_factory=list)

RULE = Rule(["free"])

@labeling_function(fields=["text"], label_space=("ham", "spam"))
def lf_dataclass(x):
    return 1 if any(w in x.text for w in RULE.words) else ABSTAIN

LOOP = []
LOOP.append(LOOP)

@labeling_function(fields=["text"], label_space=("ham", "spam"))
def lf_loop(x, seen=LOOP):
    return ABSTAIN
'''


def test_defaults_of_helpers_count_and_library_functions_do_not(tmp_path, monkeypatch):
    """A review of the default-argument change: a library function as a default was described by its library
    source (13.8 s and 3.9 MB for pandas' read_csv, warnings about pandas internals, a version that moved with
    pandas); a dataclass field's default_factory was warned about; a list holding itself raised RecursionError; a
    partial as the LF's own function was not versioned by its arguments."""
    def read(mod):
        versions = {n: getattr(mod, n).version for n in ("lf_helper", "lf_library_default", "lf_dataclass", "lf_loop")}
        # pandas' functions are not described (no warning about pandas internals), nor the dataclass's markers
        assert mod.lf_library_default.unversioned_globals == () and mod.lf_dataclass.unversioned_globals == ()
        assert mod.lf_loop.unversioned_globals == (("lf_loop(seen=...)", "list"),)
        return versions

    seen = _with_words(tmp_path, monkeypatch, REVIEW_MODULE, read)
    assert seen[0]["lf_helper"] != seen[1]["lf_helper"]  # the helper's default is the edited WORDS
    assert all(seen[0][n] == seen[1][n] for n in ("lf_library_default", "lf_dataclass", "lf_loop"))

    def has(text, words):
        return any(w in text for w in words)

    first = LabelingFunction("p", functools.partial(has, words=["free"]), label_space=("ham", "spam")).version
    second = LabelingFunction("p", functools.partial(has, words=["win"]), label_space=("ham", "spam")).version
    assert first != second
