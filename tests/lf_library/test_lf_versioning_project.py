"""LF versions follow the team's own code in other modules, and name the globals they cannot cover.

Votes are reused by LF version, so a helper edited in another module, a method of a class, or a
CSV read into a module global must either change the version or be reported; these tests write
real modules to a temporary package, import them, edit them and import them again.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LF_HEAD = "from lf_library import ABSTAIN, labeling_function, slicing_function\n"


def lf_module(body: str) -> str:
    return LF_HEAD + textwrap.dedent(body)

UTIL = '''
def _strip(s):
    return s.strip()

def norm(s):
    return _strip(s).lower()

def unused(s):
    return s
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """``load(module, **files)``: write ``files`` into a fresh package and import ``module`` afresh.

    Files keep their names across edits (as in a team's repository); the package's modules are
    dropped from ``sys.modules`` before each import, and no bytecode is cached, so an edit made
    within the same second is seen.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    pkg = f"team_{uuid.uuid4().hex[:10]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")

    def drop():
        for name in [m for m in sys.modules if m == pkg or m.startswith(pkg + ".")]:
            del sys.modules[name]

    def load(module, **files):
        for name, text in files.items():
            (tmp_path / pkg / f"{name}.py").write_text(textwrap.dedent(text).replace("PKG", pkg))
        drop()
        importlib.invalidate_caches()
        return importlib.import_module(f"{pkg}.{module}")

    load.pkg, load.root = pkg, tmp_path
    yield load
    drop()


# ----------------------------------------------------------------------------- the team's functions

FROM_IMPORT = LF_HEAD + '''
from PKG.util import norm

@labeling_function
def a(x):
    return 1 if norm(x.text) == "spam" else ABSTAIN
'''

MODULE_ALIAS = LF_HEAD + '''
import PKG.util as util

@labeling_function
def a(x):
    return 1 if util.norm(x.text) == "spam" else ABSTAIN
'''

PACKAGE_ATTRIBUTE = LF_HEAD + '''
from PKG import util

@labeling_function
def a(x):
    return 1 if util.norm(x.text) == "spam" else ABSTAIN
'''

VIA_LOCAL_HELPER = LF_HEAD + '''
from PKG.util import norm

def clean(text):
    return norm(text)

@labeling_function
def a(x):
    return 1 if clean(x.text) == "spam" else ABSTAIN
'''


@pytest.mark.parametrize("lf_source", [FROM_IMPORT, MODULE_ALIAS, PACKAGE_ATTRIBUTE, VIA_LOCAL_HELPER],
                         ids=["from-import", "import-as", "from-package-import", "via-same-module-helper"])
@pytest.mark.parametrize("edit", [("return _strip(s).lower()", 'return ""'), ("return s.strip()", "return s")],
                         ids=["helper", "helper-of-helper"])
def test_editing_a_helper_in_another_module_changes_the_version(project, lf_source, edit):
    v1 = project("usesutil", util=UTIL, usesutil=lf_source).a.version
    assert project("usesutil").a.version == v1  # the same code imported again: the same version
    assert project("usesutil", util=UTIL.replace("def unused(s):\n    return s", "def unused(s):\n    return 1")
                   ).a.version == v1  # only what the LF uses counts
    assert project("usesutil", util=UTIL.replace(*edit)).a.version != v1


def test_module_constants_read_through_a_module_are_versioned(project):
    lf_source = lf_module('''
    import PKG.words as words

    @labeling_function
    def a(x):
        return 1 if x.text in words.SPAM else ABSTAIN
    ''')
    v1 = project("usesutil", words="SPAM = {'win', 'free'}\n", usesutil=lf_source).a.version
    assert project("usesutil", words="SPAM = {'win'}\n").a.version != v1


def test_versions_do_not_depend_on_the_process_or_the_folder(project, tmp_path_factory):
    """Same code, another hash seed, another folder and package name: the same version."""
    version = project("usesutil", util=UTIL, usesutil=MODULE_ALIAS).a.version
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    other = f"other_{uuid.uuid4().hex[:6]}"
    shutil.copytree(project.root / project.pkg, elsewhere / other)
    (elsewhere / other / "usesutil.py").write_text(
        (elsewhere / other / "usesutil.py").read_text().replace(project.pkg, other))
    code = f"import sys; sys.path[:0] = [{str(elsewhere)!r}, {ROOT!r}]; import {other}.usesutil as m; print(m.a.version)"
    out = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "4242"})
    assert out.stdout.strip() == version


def test_mutual_recursion_and_self_referencing_classes_terminate(project):
    util = '''
    def even(n):
        return n == 0 or odd(n - 1)

    def odd(n):
        return n != 0 and even(n - 1)

    class Node:
        def child(self):
            return Node()

        def deep(self, n):
            return even(n)
    '''
    lf_source = lf_module('''
    from PKG.util import Node, odd

    @labeling_function
    def a(x):
        return 1 if odd(len(x.text)) and Node().child().deep(3) else ABSTAIN
    ''')
    v1 = project("usesutil", util=util, usesutil=lf_source).a.version
    assert project("usesutil", util=util.replace("n == 0 or", "n == 1 or")).a.version != v1


def test_a_slice_follows_the_teams_helpers(project):
    slices = lf_module('''
    from PKG.util import norm

    @slicing_function()
    def short(x):
        return len(norm(x.text)) < 5
    ''')
    v1 = project("myslices", util=UTIL, myslices=slices).short.version
    assert project("myslices", util=UTIL.replace("return _strip(s).lower()", 'return ""')).short.version != v1


def test_an_installed_lf_package_follows_its_own_modules_not_other_installed_ones(tmp_path, monkeypatch):
    """A team that pip-installs its LF package still has its helpers followed; a library's are not."""
    site = tmp_path / "venv" / "lib" / "site-packages"
    pkg, vendor = f"team_{uuid.uuid4().hex[:10]}", f"vendor_{uuid.uuid4().hex[:10]}"
    for name in (pkg, vendor):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    uses = lf_module(f"""
    from {pkg}.util import norm
    from {vendor}.text import fold

    @labeling_function
    def a(x):
        return 1 if norm(fold(x.text)) == "spam" else ABSTAIN
    """)

    def version(util, text):
        (site / pkg / "util.py").write_text(util)
        (site / vendor / "text.py").write_text(text)
        (site / pkg / "uses.py").write_text(uses)
        for name in [m for m in sys.modules if m.startswith((pkg, vendor))]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return importlib.import_module(f"{pkg}.uses").a.version

    try:
        v1 = version(UTIL, "def fold(s):\n    return s.casefold()\n")
        assert version(UTIL, "def fold(s):\n    return s\n") == v1  # an installed library: not followed
        assert version(UTIL.replace("return s.strip()", "return s"), "def fold(s):\n    return s\n") != v1
    finally:
        for name in [m for m in sys.modules if m.startswith((pkg, vendor))]:
            del sys.modules[name]


# ----------------------------------------------------------------------------- the team's classes

THING = '''
class Base:
    def shared(self, s):
        return s.strip()

class Thing(Base):
    WORDS = ("win", "free")

    def hit(self, s):
        return any(w in self.shared(s) for w in self.WORDS)

    @staticmethod
    def check(s):
        return "spam" in s

    @classmethod
    def make(cls):
        return cls()

THING = Thing()
'''

USES_INSTANCE = LF_HEAD + '''
from PKG.things import THING

@labeling_function
def a(x):
    return 1 if THING.hit(x.text) else ABSTAIN
'''

USES_CLASS = LF_HEAD + '''
from PKG import things

@labeling_function
def a(x):
    return 1 if things.Thing.check(x.text) or things.Thing.make().hit(x.text) else ABSTAIN
'''

SAME_MODULE_INSTANCE = THING + LF_HEAD + '''
@labeling_function
def a(x):
    return 1 if THING.hit(x.text) else ABSTAIN
'''


@pytest.mark.parametrize("edit", [
    ("return any(w in self.shared(s)", "return all(w in self.shared(s)"),  # a method
    ("return s.strip()", "return s"),  # a method of a base class
    ('WORDS = ("win", "free")', 'WORDS = ("win",)'),  # a class constant
    ('return "spam" in s', 'return "ham" in s'),  # a static method
    ("return cls()", "return Thing()"),  # a class method
], ids=["method", "base-method", "class-constant", "staticmethod", "classmethod"])
@pytest.mark.parametrize("layout", ["instance", "class", "same-module"])
def test_editing_a_class_changes_the_version(project, edit, layout):
    if layout == "same-module":
        load = lambda text: project("usesthing", usesthing=text)  # noqa: E731
        v1 = load(SAME_MODULE_INSTANCE).a.version
        assert load(SAME_MODULE_INSTANCE).a.version == v1
        assert load(SAME_MODULE_INSTANCE.replace(*edit)).a.version != v1
        return
    uses = USES_INSTANCE if layout == "instance" else USES_CLASS
    v1 = project("usesthing", things=THING, usesthing=uses).a.version
    assert project("usesthing").a.version == v1
    assert project("usesthing", things=THING.replace(*edit)).a.version != v1


def test_an_object_of_the_teams_class_holding_plain_data_is_versioned_by_its_data(project):
    things = '''
    class Words:
        def __init__(self, words):
            self.words = set(words)

        def hit(self, s):
            return any(w in s for w in self.words)

    WORDS = Words(["win", "free"])
    '''
    lf_source = lf_module('''
    from PKG.things import WORDS

    @labeling_function
    def a(x):
        return 1 if WORDS.hit(x.text) else ABSTAIN
    ''')
    lf = project("usesthing", things=things, usesthing=lf_source).a
    assert lf.unversioned_globals == ()
    assert project("usesthing", things=things.replace('["win", "free"]', '["win"]')).a.version != lf.version


# ----------------------------------------------------------------------------- what cannot be versioned

LOADED = LF_HEAD + '''
import pandas as pd

WORDS = pd.read_csv(__file__.replace("usesdata.py", "words.csv"))

class Model:
    def __init__(self, frame):
        self.frame = frame

    def hit(self, s):
        return s in set(self.frame.word)

MODEL = Model(WORDS)

@labeling_function
def a(x):
    return 1 if x.text in set(WORDS.word) else ABSTAIN

@labeling_function
def b(x):
    return 1 if MODEL.hit(x.text) else ABSTAIN

@labeling_function
def c(x):
    return 1 if x.text == "spam" else ABSTAIN
'''


def test_globals_that_cannot_be_versioned_are_named_on_the_lf(project):
    (project.root / project.pkg / "words.csv").write_text("word\nwin\n")
    mod = project("usesdata", usesdata=LOADED)
    assert mod.a.unversioned_globals == (("WORDS", "DataFrame"),)
    assert mod.b.unversioned_globals == (("MODEL", "Model"),)  # its data is a DataFrame
    assert mod.c.unversioned_globals == ()
    # The limit that the warning is about: the data changed, the version cannot tell.
    (project.root / project.pkg / "words.csv").write_text("word\nfree\n")
    assert project("usesdata").a.version == mod.a.version


def test_the_jobs_warn_once_per_lf_about_globals_they_cannot_version(project, caplog, tmp_path):
    from jobs import apply_lfs
    from jobs.runtime.config_loading import config_from_dict

    (project.root / project.pkg / "words.csv").write_text("word\nwin\n")
    project("usesdata", usesdata=LOADED)
    cfg = config_from_dict({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(tmp_path / "src"), "format": "parquet", "id_column": "id"},
        "lfs": {"label_space": ["ham", "spam"], "modules": [f"{project.pkg}.usesdata"]},
        "mlflow": {"enabled": False},
    })
    with caplog.at_level(logging.WARNING):
        apply_lfs.build_registry(cfg)
        apply_lfs.build_registry(cfg)  # loaded again in the same process: no second warning
    lines = [r.getMessage() for r in caplog.records if "version does not cover" in r.getMessage()]
    assert len(lines) == 2, lines
    a = next(line for line in lines if line.startswith("LF 'a'"))
    assert "WORDS (a DataFrame)" in a and "edits to it do not change LF 'a''s version" in a
    assert "resources={'WORDS': ...}" in a and "__lakelabel_version__" in a and "--force" in a
    assert any(line.startswith("LF 'b'") and "MODEL (a Model)" in line for line in lines)


def test_an_object_with_its_own_version_is_versioned_by_it(project):
    lf_source = lf_module('''
    class Model:
        __lakelabel_version__ = "model-v1"

        def __call__(self, text):
            return text == "spam"

    MODEL = Model()

    @labeling_function
    def a(x):
        return 1 if MODEL(x.text) else ABSTAIN
    ''')
    lf = project("usesmodel", usesmodel=lf_source).a
    assert lf.unversioned_globals == ()
    assert project("usesmodel", usesmodel=lf_source.replace("model-v1", "model-v2")).a.version != lf.version


# ----------------------------------------------------------------------------- libraries keep versions

LIBRARIES = '''
import os.path
import re

import numpy as np
import pandas as pd
from numpy import log1p

from lf_library import ABSTAIN, labeling_function
from lf_library.core import make_row

@labeling_function
def calls_libraries(x):
    n = log1p(len(x.text)) + np.sqrt(2.0)
    if pd.isna(x.text) or re.search("a", x.text) or os.path.basename(x.text) or make_row({"t": x.text}):
        return 1 if n > 1 else 0
    return ABSTAIN
'''


def test_an_lf_calling_libraries_and_lakelabel_keeps_its_version(project):
    """Pinned: the versions main computed before the team's modules were followed; libraries are not."""
    lf = project("libs", libs=LIBRARIES).calls_libraries
    assert lf.version == "f8cd22a789ec"
    assert lf.unversioned_globals == ()
    lf.label_space = ("ham", "spam")
    assert lf.version == "add10c644910"


# ----------------------------------------------------------------------------- after the review (session 18)

BOUND = LF_HEAD + '''
import logging
import re

from numpy import where

LOOKUP = {"spam": 1, "win": 1}.get
IS_STOP = frozenset({"the", "a"}).__contains__
FIND = re.compile("free").search
log = logging.getLogger(__name__)

@labeling_function
def a(x):
    return LOOKUP(x.text, ABSTAIN)

@labeling_function
def b(x):
    return 1 if FIND(x.text) and not IS_STOP(x.text) else ABSTAIN

@labeling_function
def c(x):
    log.debug("voting on %s", x.text)
    return int(where(len(x.text) > 3, 1, -1))
'''


class _Refuses:
    def __getattr__(self, name):
        raise RuntimeError(f"no attribute {name} here")


def test_bound_methods_of_data_are_versioned_and_library_callables_are_not_warned_about(project):
    mod = project("bound", bound=BOUND)
    assert [lf.unversioned_globals for lf in (mod.a, mod.b, mod.c)] == [(), (), ()]
    edited = project("bound", bound=BOUND.replace('"win": 1', '"win": 0').replace('"free"', '"prize"'))
    assert edited.a.version != mod.a.version and edited.b.version != mod.b.version
    assert edited.c.version == mod.c.version


def test_an_object_whose_attributes_raise_is_named_not_a_failed_load(project, monkeypatch):
    mod = project("refuses", refuses=LF_HEAD + '''
P = None

@labeling_function
def a(x):
    return 1 if P.ready else ABSTAIN
''')
    monkeypatch.setattr(mod, "P", _Refuses())
    assert mod.a.version and mod.a.unversioned_globals == (("P", "_Refuses"),)


def test_a_helper_in_a_namespace_package_is_followed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    ns = f"shared_{uuid.uuid4().hex[:8]}"
    (tmp_path / ns).mkdir()  # no __init__.py: a namespace package
    versions = []
    for body in ("return s.lower()", "return ''"):
        (tmp_path / ns / "util.py").write_text(f"def norm(s):\n    {body}\n")
        (tmp_path / f"{ns}_lfs.py").write_text(LF_HEAD + f"import {ns}.util\n\n@labeling_function\ndef a(x):\n"
                                                f"    return 1 if {ns}.util.norm(x.text) == 'spam' else ABSTAIN\n")
        for name in [m for m in sys.modules if m.startswith(ns)]:
            del sys.modules[name]
        importlib.invalidate_caches()
        versions.append(importlib.import_module(f"{ns}_lfs").a.version)
    assert versions[0] != versions[1]
