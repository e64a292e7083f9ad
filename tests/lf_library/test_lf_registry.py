"""LFRegistry and load_registry (modules written to a temporary folder)."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

from lf_library import LabelingFunction, LFConfigError, LFRegistry, keyword_lf, load_registry

SPACE = ("ham", "spam")


def make_lf(name, vote=1):
    return LabelingFunction(name, lambda x: vote)


def test_register_assigns_label_space_and_sorts_by_name():
    reg = LFRegistry(SPACE)
    b, a = make_lf("lf_b"), make_lf("lf_a")
    assert reg.register(b) is b
    reg.register(a)
    assert reg.names == ("lf_a", "lf_b") and reg.lfs == (a, b) and list(reg) == [a, b]
    assert a.label_space == SPACE and reg.cardinality == 2 and len(reg) == 2
    assert reg["lf_a"] is a and "lf_b" in reg and "nope" not in reg
    assert reg.versions == {"lf_a": a.version, "lf_b": b.version}
    with pytest.raises(KeyError, match=r"no LF named 'nope'; known LFs: \['lf_a', 'lf_b'\]"):
        reg["nope"]


def test_register_rejects_duplicates_and_foreign_label_spaces():
    reg = LFRegistry(SPACE)
    reg.register(make_lf("lf_a"))
    with pytest.raises(ValueError, match=r"LF names must be unique; duplicated: 'lf_a'"):
        reg.register(make_lf("lf_a"))
    other = LabelingFunction("lf_c", lambda x: 1, label_space=["x", "y"])
    with pytest.raises(LFConfigError, match=r"LF 'lf_c' has label space \['x', 'y'\] but the registry uses \['ham', 'spam'\]"):
        reg.register(other)
    with pytest.raises(TypeError, match=r"register\(\) takes a LabelingFunction, got function"):
        reg.register(lambda x: 1)


def test_fingerprint_follows_names_versions_and_label_space():
    def build(space=SPACE, vote=1):
        reg = LFRegistry(space)
        reg.register(keyword_lf("kw", ["free"], vote))
        reg.register(make_lf("lf_a"))
        return reg

    fp = build().fingerprint
    assert len(fp) == 64 and fp == build().fingerprint
    assert build(vote=0).fingerprint != fp
    assert build(space=("ham", "spam", "other")).fingerprint != fp


def test_select_include_exclude_and_unknown_names():
    reg = LFRegistry(SPACE)
    for name in ("lf_a", "lf_b", "lf_c"):
        reg.register(make_lf(name))
    assert reg.select(include=["lf_c", "lf_a"]).names == ("lf_a", "lf_c")
    assert reg.select(exclude=["lf_b"]).names == ("lf_a", "lf_c")
    assert reg.select().names == reg.names
    with pytest.raises(LFConfigError, match=r"^exclude: unknown LF name\(s\) \['lf_x'\]; known LFs: \['lf_a', 'lf_b', 'lf_c'\]"):
        reg.select(exclude=["lf_x"])
    with pytest.raises(LFConfigError, match=r"^lfs\.include: unknown LF name\(s\) \['lf_y'\]; lfs\.exclude: unknown LF "
                                            r"name\(s\) \['lf_x'\]; known LFs: .*remove it from lfs\.include and lfs\.exclude$"):
        reg.select(include=["lf_a", "lf_y"], exclude=["lf_x"], config_key="lfs")  # both lists' typos at once
    with pytest.raises(LFConfigError, match=r"include must be a list of LF names, got the string 'lf_a'"):
        reg.select(include="lf_a")


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    written = []

    def write(body: str) -> str:
        name = f"lfreg_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


LFS_MODULE = """
from lf_library import ABSTAIN, labeling_function, keyword_lf
LABEL_SPACE = ["ham", "spam"]

@labeling_function()
def lf_len(x):
    return 0 if len(x.text) > 10 else ABSTAIN

kw_free = keyword_lf("kw_free", ["free"], "spam")
LFS = [kw_free, keyword_lf("kw_win", ["win"], "spam")]
"""


def test_load_registry_collects_attributes_and_lfs_list(write_module):
    mod = write_module(LFS_MODULE)
    reg = load_registry([mod])
    assert reg.names == ("kw_free", "kw_win", "lf_len") and reg.label_space == SPACE
    assert load_registry([mod], include=["lf_len"]).names == ("lf_len",)
    assert load_registry([mod], exclude=["lf_len"]).names == ("kw_free", "kw_win")


def test_load_registry_label_space_from_argument_must_match_modules(write_module):
    mod = write_module(LFS_MODULE)
    with pytest.raises(LFConfigError, match=r"label_space \['spam', 'ham'\] disagrees with the LABEL_SPACE of \{'lfreg_"):
        load_registry([mod], label_space=["spam", "ham"])
    plain = write_module("from lf_library import keyword_lf\nkw = keyword_lf('kw', ['a'], 1)\n")
    assert load_registry([plain], label_space=["x", "y"]).label_space == ("x", "y")
    with pytest.raises(LFConfigError, match=r"no label space for modules \['lfreg_\w+'\]: pass label_space=\[\.\.\.\] or define LABEL_SPACE"):
        load_registry([write_module("from lf_library import keyword_lf\nkw = keyword_lf('kw', ['a'], 1)\n")])


def test_load_registry_modules_must_agree(write_module):
    a = write_module("from lf_library import keyword_lf\nLABEL_SPACE = ['a', 'b']\nk1 = keyword_lf('k1', ['x'], 1)\n")
    b = write_module("from lf_library import keyword_lf\nLABEL_SPACE = ['a', 'c']\nk2 = keyword_lf('k2', ['x'], 1)\n")
    with pytest.raises(LFConfigError, match=r"LF modules disagree on LABEL_SPACE"):
        load_registry([a, b])


def test_load_registry_names_duplicates_across_modules(write_module):
    a = write_module("from lf_library import keyword_lf\nLABEL_SPACE = ['a', 'b']\nk = keyword_lf('same', ['x'], 1)\n")
    b = write_module("from lf_library import keyword_lf\nLABEL_SPACE = ['a', 'b']\nk = keyword_lf('same', ['y'], 1)\n")
    with pytest.raises(LFConfigError, match=rf"duplicated: 'same' \(defined in {a} and in {b}\)"):
        load_registry([a, b])


def test_load_registry_shares_an_lf_imported_into_two_modules(write_module):
    a = write_module("from lf_library import keyword_lf\nLABEL_SPACE = ['a', 'b']\nk = keyword_lf('shared', ['x'], 1)\n")
    b = write_module(f"from {a} import k, LABEL_SPACE\n")
    assert load_registry([a, b]).names == ("shared",)


def test_load_registry_import_problems(write_module):
    with pytest.raises(LFConfigError, match=r"LF module 'no_such_lf_module' cannot be imported: .*check the dotted name"):
        load_registry(["no_such_lf_module"])
    needs = write_module("import some_missing_dependency_xyz\n")
    with pytest.raises(LFConfigError, match=r"needs 'some_missing_dependency_xyz', which is not installed"):
        load_registry([needs])
    broken = write_module("raise RuntimeError('boom')\n")
    with pytest.raises(LFConfigError, match=r"raised on import: RuntimeError: boom"):
        load_registry([broken])
    empty = write_module("LABEL_SPACE = ['a', 'b']\n")
    with pytest.raises(LFConfigError, match=r"defines no LabelingFunction"):
        load_registry([empty])
    bad_list = write_module("LABEL_SPACE = ['a', 'b']\nLFS = [1]\n")
    with pytest.raises(LFConfigError, match=r"LFS\[0\] is a int, not a LabelingFunction"):
        load_registry([bad_list])
    with pytest.raises(LFConfigError, match=r"no LF modules given"):
        load_registry([])


def test_an_lf_module_the_notebook_imported_itself_then_edited_is_reread(tmp_path, monkeypatch):
    """The notebook imports its LF module in a cell (to try an LF), the module is edited, then the first job loads
    it: no job had seen it yet, so the edit was not noticed. A file written since lakelabel's import is reread."""
    import importlib

    package = f"lfpkg_{uuid.uuid4().hex[:10]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    body = 'from lf_library import keyword_lf\nLABEL_SPACE = ["ham", "spam"]\nkw = keyword_lf("kw", {}, "spam")\n'
    (tmp_path / package / "lfs.py").write_text(body.format(["refund"]))
    try:
        assert importlib.import_module(f"{package}.lfs").kw.spec["keywords"] == ["refund"]  # the notebook's cell
        (tmp_path / package / "lfs.py").write_text(body.format(["refund", "invoice"]))
        assert sorted(load_registry([f"{package}.lfs"])["kw"].spec["keywords"]) == ["invoice", "refund"]
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            sys.modules.pop(name, None)


def test_load_registry_rereads_lf_modules_edited_since_their_import(tmp_path, monkeypatch):
    """A notebook runs the pipeline, the team edits its LF package, the notebook runs it again in the same Python
    process: import_module returned the first import, so the edit was left out with the old versions and the old
    votes reused (a drill, session 39). A module edited on disk is reloaded, its package's edited helpers first."""
    package = f"lfpkg_{uuid.uuid4().hex[:10]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "util.py").write_text("WORDS = ('refund',)\n")
    (tmp_path / package / "lfs.py").write_text(textwrap.dedent(f"""
        from lf_library import keyword_lf
        from {package}.util import WORDS
        LABEL_SPACE = ["ham", "spam"]
        kw = keyword_lf("kw", list(WORDS), "spam")
        other = keyword_lf("other", ["x"], "ham")
    """))
    try:
        first = load_registry([f"{package}.lfs"])
        assert load_registry([f"{package}.lfs"])["kw"] is first["kw"]  # unedited: the same objects
        (tmp_path / package / "util.py").write_text("WORDS = ('refund', 'invoice')\n")  # the helper only
        second = load_registry([f"{package}.lfs"])
        assert sorted(second["kw"].spec["keywords"]) == ["invoice", "refund"]
        assert second["kw"].version != first["kw"].version
        assert second["other"].version == first["other"].version
        (tmp_path / package / "lfs.py").write_text("raise RuntimeError('half edited')\n")
        with pytest.raises(LFConfigError, match=r"raised on import: RuntimeError: half edited"):
            load_registry([f"{package}.lfs"])
        (tmp_path / package / "lfs.py").write_text(textwrap.dedent("""
            from lf_library import keyword_lf
            LABEL_SPACE = ["ham", "spam"]
            kw = keyword_lf("kw", ["refund", "invoice", "charge"], "spam")
        """))
        assert sorted(load_registry([f"{package}.lfs"])["kw"].spec["keywords"]) == ["charge", "invoice", "refund"]
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            sys.modules.pop(name, None)
