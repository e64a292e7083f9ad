"""LFs declared in YAML: same versions as the Python builders, same path, errors naming file/entry/key."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lf_library import LFRegistry, keyword_lf, lexicon_file_lf, lexicon_lf, regex_lf, sql_lf
from lf_library.declared import declared_lfs, load_declared_file
from lf_library.errors import LFConfigError

SPACE = ["ham", "spam"]


def _registered(pairs):
    reg = LFRegistry(SPACE)
    for lf, origin in pairs:
        reg.register(lf, origin=origin)
    return reg


def test_declared_lfs_have_the_versions_of_the_same_python_lfs(tmp_path):
    (tmp_path / "terms.csv").write_text("term,class\nprize,spam\nlol,ham\n")
    (tmp_path / "lfs.yaml").write_text(
        "lfs:\n"
        "  - {name: kw, kind: keyword, keywords: [subscribe, sub], label: spam, field: CONTENT}\n"
        "  - {name: re, kind: regex, pattern: 'https?://', label: spam, field: CONTENT}\n"
        "  - {name: lex, kind: lexicon, terms: {ham: [song], spam: [money]}, field: CONTENT}\n"
        "  - {name: lexf, kind: lexicon, file: terms.csv, field: CONTENT}\n"
        "  - {name: short, kind: sql, condition: 'length(CONTENT) < 20', label: ham}\n"
    )
    declared = _registered(load_declared_file(tmp_path / "lfs.yaml"))
    python = LFRegistry(SPACE)
    python.register(keyword_lf("kw", ["sub", "subscribe"], "spam", field="CONTENT"))
    python.register(regex_lf("re", "https?://", "spam", field="CONTENT"))
    python.register(lexicon_lf("lex", {"spam": ["money"], "ham": ["song"]}, field="CONTENT"))
    python.register(lexicon_file_lf("lexf", tmp_path / "terms.csv", field="CONTENT"))
    python.register(sql_lf("short", "length(CONTENT) < 20", "ham"))
    assert declared.versions == python.versions
    assert {n: declared[n].kind for n in declared.names} == {
        "kw": "keyword", "lex": "lexicon", "lexf": "lexicon", "re": "regex", "short": "sql"}
    assert declared.origin("kw") == f"file {tmp_path / 'lfs.yaml'} entry 0"
    assert declared.origin("lexf") == f"file {tmp_path / 'terms.csv'}"
    # Same vectorized path: the declared keyword LF votes through Arrow.
    votes = declared["kw"].evaluate_arrow(pa.table({"CONTENT": ["pls subscribe", "nice"]}))
    assert votes.tolist() == [1, -1]


def test_a_changed_term_gives_a_new_version(tmp_path):
    entry = {"name": "kw", "kind": "keyword", "keywords": ["free"], "label": "spam"}
    v1 = _registered(declared_lfs([entry]))["kw"].version
    assert _registered(declared_lfs([dict(entry)]))["kw"].version == v1
    assert _registered(declared_lfs([{**entry, "keywords": ["free", "prize"]}]))["kw"].version != v1
    assert _registered(declared_lfs([{**entry, "whole_word": False}]))["kw"].version != v1
    assert _registered(declared_lfs([entry]))["kw"].version == v1


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "x", "kind": "magic", "label": "spam"},
         "{w} (x): unknown kind 'magic' (key 'kind'); use one of: keyword, regex, lexicon, sql, column, model"),
        ({"name": "x", "kind": "regex", "pattern": "(?<=a)b", "label": "spam"},
         "{w} (x): LF 'x': pattern '(?<=a)b' does not compile as an RE2 regex"),
        ({"name": "x", "kind": "keyword", "label": "spam"}, "{w} (x): missing key 'keywords'"),
        # `keywords: refund, charge` in YAML: one string that matched nothing (a drill, session 18)
        ({"name": "x", "kind": "keyword", "keywords": "refund, charge", "label": "spam"},
         "{w} (x): key 'keywords' is the one string 'refund, charge', which would match only that whole text; "
         "write a list: keywords: [refund, charge]"),
        ({"kind": "keyword", "keywords": ["a"], "label": "spam"}, "{w}: missing key 'name'"),
        ({"name": "x", "kind": "keyword", "keywords": ["a"], "label": "spam", "feild": "t"},
         "{w} (x): unknown key 'feild' for a keyword LF; valid keys: name, kind, keywords, label, field"),
        ({"name": "x", "kind": "keyword", "keywords": ["a"], "label": "spam", "whole_word": "yes"},
         "{w} (x): key 'whole_word' must be true or false"),
        ({"name": "x", "kind": "lexicon", "field": "t"}, "{w} (x): give either 'file'"),
        ({"name": "x", "kind": "lexicon", "file": "absent.csv"}, "{w} (x): lexicon file"),
        ({"name": "x", "kind": "column", "column": "old", "mapping": {}}, "{w} (x): LF 'x': mapping must be a non-empty"),
        ({"name": "x", "kind": "model", "model_uri": "models:/m/1", "label_map": {1: "spam"}, "threshold": 2},
         "{w} (x): LF 'x': threshold must be a probability in [0, 1]"),
        ("just a string", "{w}: an LF entry must be a mapping"),
    ],
)
def test_bad_entries_name_file_entry_and_key(tmp_path, entry, message):
    import yaml

    path = tmp_path / "lfs.yaml"
    path.write_text(yaml.safe_dump([{"name": "ok", "kind": "sql", "condition": "true", "label": "ham"}, entry]))
    with pytest.raises(LFConfigError) as err:
        load_declared_file(path)
    assert message.format(w=f"LF file {path} entry 1") in str(err.value)
    with pytest.raises(LFConfigError) as err:
        declared_lfs([entry], base=tmp_path)
    assert message.format(w="config lfs.declared[0]") in str(err.value)


def test_bad_files(tmp_path, monkeypatch):
    with pytest.raises(LFConfigError, match=r"LF file .*absent.yaml cannot be read"):
        load_declared_file(tmp_path / "absent.yaml")
    monkeypatch.chdir(tmp_path)  # a relative path is shown with the folder it was looked for in (a drill)
    with pytest.raises(LFConfigError, match=rf"^LF file team.yaml \({tmp_path}/team.yaml\) cannot be read: No such"):
        declared_lfs([], ["team.yaml"])
    (tmp_path / "bad.yaml").write_text("- {name: [unclosed\n")
    with pytest.raises(LFConfigError, match=r"LF file .*bad.yaml is not valid YAML"):
        load_declared_file(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text("lfs: []\n")
    with pytest.raises(LFConfigError, match=r"LF file .*empty.yaml declares no LF"):
        load_declared_file(tmp_path / "empty.yaml")
    (tmp_path / "map.yaml").write_text("kw: {kind: keyword}\n")
    with pytest.raises(LFConfigError, match=r"LF file .*map.yaml: expected a list of LF entries"):
        load_declared_file(tmp_path / "map.yaml")
    (tmp_path / "config_shape.yaml").write_text("lfs:\n  declared:\n    - {name: kw, kind: keyword, keywords: [x], label: 1}\n")
    with pytest.raises(LFConfigError, match=r"LF file .*config_shape.yaml: holds lfs.declared, the pipeline config's "
                                            r"shape; an LF file holds the list itself"):
        load_declared_file(tmp_path / "config_shape.yaml")


def test_a_class_name_outside_the_label_space_says_which_entry(tmp_path):
    """A drill: `label: spma` in lfs.declared said only "LF 'kw_x': label 'spma' is not in the label space", where
    every other error of an entry names the config key or the file and entry."""
    (tmp_path / "lfs.yaml").write_text("- {name: kw_y, kind: keyword, keywords: [free], label: spma}\n")
    for lf, origin in declared_lfs([{"name": "kw_x", "kind": "keyword", "keywords": ["free"], "label": "spma"}],
                                   ["lfs.yaml"], base=tmp_path):
        with pytest.raises(LFConfigError) as err:
            LFRegistry(["ham", "spam"]).register(lf, origin=origin)
        assert str(err.value) == (f"{origin}: LF {lf.name!r}: label 'spma' is not in the label space ['ham', 'spam']; "
                                  f"use one of these names or a class id")
    assert origin == f"file {tmp_path / 'lfs.yaml'} entry 0"
