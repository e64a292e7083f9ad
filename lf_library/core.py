"""Labeling functions: a named callable that votes a class id or abstains, with a stable version.

An LF is a small Python function wrapped with a name, optional explicit ``resources`` (keyword
arguments bound at call time) and the label space it votes in::

    @labeling_function(resources={"words": {"subscribe", "check out"}})
    def lf_spammy(x, words):
        return 1 if any(w in x.text.lower() for w in words) else ABSTAIN

Every LF has a :attr:`~LabelingFunction.version`: 12 hex characters of a sha256 over a canonical
description of what it computes (kind, name, label space, normalised source, closure values,
referenced module constants, the team's own functions and classes it uses, resources). The same
code gives the same version in every process and on every machine, so votes written to Delta can
be traced to the exact LF that cast them. Globals it reads that cannot be described (data loaded
into a module global) are listed in :attr:`~LabelingFunction.unversioned_globals`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import posixpath
import re
import unicodedata
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lf_library._versioning import (
    _closure_description,
    _describe_function,
    _dumps,
    canonical_json,
    canonical_resources,
)
from lf_library.errors import LFConfigError, LFError

__all__ = ["ABSTAIN", "LabelingFunction", "labeling_function", "make_row", "canonical_json"]

ABSTAIN = -1

_MAX_NAME = 200


# ----------------------------------------------------------------------------- rows


def _missing_column(name: str, columns: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:50]) + (", ..." if len(columns) > 50 else "")
    return f"row has no column {name!r}; available columns: {shown or '(none)'}"


@functools.lru_cache(maxsize=256)
def _row_class(columns: tuple[str, ...]) -> type:
    """A namedtuple subclass for rows with these columns: attribute and item access by name.

    Built once per distinct column tuple. Creating a row is ``tuple.__new__(cls, values)`` and
    reading ``x.text`` is a C-level field access, which keeps row-wise LFs fast.
    """
    base = namedtuple("Row", columns, rename=True)
    index = {c: i for i, c in enumerate(columns)}
    getitem = tuple.__getitem__

    def __getattr__(self, name):  # only reached when the column does not exist
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise AttributeError(_missing_column(name, columns))

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return getitem(self, index[key])
            except KeyError:
                raise KeyError(_missing_column(key, columns)) from None
        return getitem(self, key)

    def __contains__(self, key):
        return key in index

    def __repr__(self):
        return "Row(" + ", ".join(f"{c}={v!r}" for c, v in zip(columns, self)) + ")"

    def get(self, key, default=None):
        i = index.get(key)
        return default if i is None else getitem(self, i)

    def keys(self):
        return columns

    def asDict(self):  # noqa: N802 - same name as pyspark.sql.Row
        return dict(zip(columns, self))

    namespace: dict[str, Any] = {
        "__slots__": (),
        "__getattr__": __getattr__,
        "__getitem__": __getitem__,
        "__contains__": __contains__,
        "__repr__": __repr__,
        "columns": columns,
    }
    # Helper methods never shadow a column of the same name.
    for meth in (get, keys, asDict):
        if meth.__name__ not in index:
            namespace[meth.__name__] = meth
    if "columns" in index:
        del namespace["columns"]
    return type("Row", (base,), namespace)


def make_row(data: Mapping[str, Any]) -> Any:
    """A row object with attribute and item access (``x.text``, ``x["text"]``) from a mapping."""
    cls = _row_class(tuple(data.keys()))
    return tuple.__new__(cls, tuple(data.values()))


def _as_row(x: Any) -> Any:
    """Rows for notebook calls: dicts become row objects; Series, Spark Rows, rows pass through."""
    if isinstance(x, Mapping):
        return make_row(x)
    return x


def _as_record(x: Any) -> dict[str, Any]:
    """A plain ``{column: value}`` dict from a dict, row object, pandas Series or pyspark Row."""
    if isinstance(x, Mapping):
        return dict(x)
    if hasattr(x, "asDict"):
        return dict(x.asDict())
    if hasattr(x, "to_dict"):
        return dict(x.to_dict())
    if hasattr(x, "_asdict"):
        return dict(x._asdict())
    raise TypeError(
        f"cannot read columns from a {type(x).__name__}; pass a dict, a pandas Series or a pyspark Row"
    )


# ----------------------------------------------------------------------------- validation helpers


# What MLflow takes in a param or metric name (each LF's version is logged as param ``lf.<name>``): letters and
# digits (any script), _ - . : / and spaces, and a path that normalizes to itself (no "a//b", "a/", "a/./b").
_NAME_CHARS = re.compile(r"[\w\-.:/ ]+")


def _check_name(name: Any, *, logged: bool = True) -> str:
    """``name`` checked; ``logged``: also as MLflow takes it in a param name (an LF's; a slice's is never logged)."""
    if not isinstance(name, str) or not name.strip():
        raise LFConfigError(f"an LF name must be a non-empty string, got {name!r}")
    if name != name.strip() or any(ch in name for ch in "\n\r\t") or len(name) > _MAX_NAME:
        raise LFConfigError(
            f"LF name {name!r} is invalid: use at most {_MAX_NAME} characters, no tabs, newlines "
            f"or surrounding spaces (e.g. 'kw_subscribe')"
        )
    if not logged:
        return name
    bad = sorted(set(_NAME_CHARS.sub("", name)))
    if bad or posixpath.normpath(f"lf.{name}") != f"lf.{name}":
        what = f"character(s) {''.join(bad)!r}" if bad else "a path that is not normal ('//', a trailing '/', '/./')"
        if bad and all(unicodedata.category(ch).startswith("M") for ch in bad):
            fixed = unicodedata.normalize("NFC", name)
            what = (f"a separate accent mark ({', '.join(f'U+{ord(ch):04X}' for ch in bad)}): the name was saved "
                    f"with its accents apart from their letters (as macOS and some editors write them)"
                    + (f"; retype it, or write {fixed!r}" if not set(_NAME_CHARS.sub("", fixed)) else ""))
        raise LFConfigError(
            f"LF name {name!r} is invalid: it has {what}; use letters, digits, spaces and _ - . : / "
            f"(MLflow logs each LF's version as the param lf.<name>), e.g. 'kw_subscribe'"
        )
    return name


def check_label_space(label_space: Any, *, owner: str = "label_space") -> tuple[str, ...]:
    """Validate a label space and return it as a tuple of class names.

    Raises
    ------
    LFConfigError
        When it is not a sequence of at least two distinct non-empty strings, or two differ only in case or one
        starts or ends with a space.
    """
    if isinstance(label_space, (str, bytes)) or not isinstance(label_space, Sequence):
        raise LFConfigError(
            f"{owner} must be a sequence of class names such as ['ham', 'spam'], got {label_space!r}"
        )
    names = tuple(label_space)
    bad = [c for c in names if not isinstance(c, str) or not c]
    if bad:
        # YAML reads no/yes/on/off/true/false as booleans and 1, 2 as numbers
        hint = "; quote them in YAML ('no', 'yes'): YAML reads no/yes/on/off as booleans" if any(
            isinstance(c, bool) for c in bad) else ""
        raise LFConfigError(f"{owner} must hold non-empty strings; bad entries: {bad!r}{hint}")
    if len(names) < 2:
        raise LFConfigError(f"{owner} needs at least two classes, got {list(names)!r}")
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise LFConfigError(f"{owner} must hold distinct class names; duplicated: {dupes}")
    padded = [c for c in names if c != c.strip()]
    if padded:  # ' spam' would be a class of its own that no 'spam' label or gold value reaches
        raise LFConfigError(f"{owner}: class name(s) {padded!r} start or end with a space; remove it "
                            f"({[c.strip() for c in padded]!r})")
    folded: dict[str, str] = {}
    for c in names:  # 'billing' and 'Billing' split one class in two: LFs and gold would each pick one
        other = folded.setdefault(c.casefold(), c)
        if other != c:
            raise LFConfigError(f"{owner} holds {other!r} and {c!r}, which differ only in case: they would be two "
                                f"classes; keep one spelling")
    return names


def _check_fields(fields: Any, lf_name: str) -> tuple[str, ...] | None:
    if fields is None:
        return None
    if isinstance(fields, str):
        fields = (fields,)
    if not isinstance(fields, Sequence) or not all(isinstance(c, str) and c for c in fields):
        raise LFConfigError(
            f"LF {lf_name!r}: fields must be a list of column names such as ['text'], got {fields!r}"
        )
    return tuple(dict.fromkeys(fields))


def _check_resources(resources: Any, lf_name: str) -> dict[str, Any]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise LFConfigError(f"LF {lf_name!r}: resources must be a dict of keyword arguments, got {resources!r}")
    bad = [k for k in resources if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise LFConfigError(
            f"LF {lf_name!r}: resource keys must be Python identifiers (they are passed as keyword "
            f"arguments); bad keys: {bad!r}"
        )
    return dict(resources)


def describe_vote(value: Any, label_space: Sequence[str] | None, cardinality: int | None = None) -> str | None:
    """``None`` when ``value`` is a valid vote, else a one-line reason (used in error records)."""
    k = len(label_space) if label_space is not None else cardinality
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value == ABSTAIN or (k is None and value >= 0) or (k is not None and 0 <= value < k):
            return None
        return f"returned {int(value)}; {_space_text(label_space, k)}"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if isinstance(value, str) and label_space is not None and value in label_space:
        name = str(value)  # np.str_('a') shows as such: the hint is Python source
        return (f"returned {shown} (str), a class name; return its id {list(label_space).index(value)} "
                f"(LABEL_SPACE.index({name!r})) or -1 (ABSTAIN)")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return (f"returned {shown} ({type(value).__name__}); votes are int class ids: return int(...) (a vectorized "
                f"LF: .astype(int), e.g. np.where(..., 1, -1) without floats); {_space_text(label_space, k)}")
    return (
        f"returned {shown} ({type(value).__name__}); expected an int class id or -1 (ABSTAIN); "
        f"{_space_text(label_space, k)}"
    )


def _space_text(label_space: Sequence[str] | None, k: int | None) -> str:
    if k is None:
        return "label space not set yet"
    text = f"label space is 0..{k - 1}"
    if label_space is not None:
        text += " (" + ", ".join(label_space) + ")"
    return text


# ----------------------------------------------------------------------------- LabelingFunction


class LabelingFunction:
    """A named labeling function: votes a class id in ``0..k-1`` or abstains with ``-1``.

    Parameters
    ----------
    name : str
        Unique name within a registry; part of the version.
    f : callable
        Row-wise: ``f(x, **resources) -> int`` where ``x`` has attribute and item access to the
        source columns (``x.text``, ``x["text"]``). Vectorized: ``f(df, **resources)`` gets a
        ``pandas.DataFrame`` and returns one int per row.
    label_space : sequence of str, optional
        Class names, index = class id. ``None`` until a :class:`~lf_library.LFRegistry` assigns one.
    resources : mapping, optional
        Keyword arguments passed to ``f``. They are part of the version, so they must have a
        canonical JSON form (str, numbers, lists, sets, dicts, compiled regexes, numpy arrays).
    vectorized : bool, default False
        Whether ``f`` takes a DataFrame of rows instead of one row.
    fields : sequence of str, optional
        Columns ``f`` reads; the row (or DataFrame) holds only these. ``None`` means all columns.

    Notes
    -----
    Rows are shared between LFs within a batch and are read-only tuples; do not try to mutate them.
    """

    #: "python" | "vectorized" | "keyword" | "regex" | "sql" | "lexicon" | "column" | "model"
    kind: str
    #: Where the LF's knowledge comes from when it is not its code ("file terms.csv", "column
    #: old_label", "model models:/spam/3"); the registry falls back to the defining module.
    origin: str | None = None
    _unversioned: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        name: str,
        f: Callable[..., Any],
        *,
        label_space: Sequence[str] | None = None,
        resources: Mapping[str, Any] | None = None,
        vectorized: bool = False,
        fields: Sequence[str] | None = None,
    ) -> None:
        self._init_common(name, label_space=label_space, resources=resources, fields=fields)
        if not callable(f):
            raise LFConfigError(f"LF {name!r}: f must be callable, got {type(f).__name__}")
        self.f = f
        self.vectorized = bool(vectorized)
        self.kind = "vectorized" if self.vectorized else "python"
        self._resources_canonical = canonical_resources(self.resources, name)
        self._described: dict[str, Any] | None = None
        # Closure cells are checked now, so an unversionable closure fails where the LF is defined.
        self._closure_check(f)
        self._signature_check(f)
        self.__doc__ = getattr(f, "__doc__", None)
        self.__wrapped__ = f

    # -- shared by LabelingFunction and the declarative builders
    def _init_common(
        self,
        name: str,
        *,
        label_space: Sequence[str] | None,
        resources: Mapping[str, Any] | None,
        fields: Sequence[str] | None,
    ) -> None:
        self.name = _check_name(name)
        self.resources = _check_resources(resources, name)
        self.fields = _check_fields(fields, name)
        self._label_space: tuple[str, ...] | None = None
        self._version_cache: tuple[Any, str] | None = None
        if label_space is not None:
            self.label_space = label_space

    def _closure_check(self, f: Callable) -> None:
        code = getattr(f, "__code__", None)
        if code is not None and code.co_freevars:
            _closure_description(f, self.name, {id(f)}, strict=True)

    def _signature_check(self, f: Callable) -> None:
        """``f`` must take the row (or DataFrame) and the resources as keywords: say so where the LF is
        defined, not as a TypeError on every row."""
        called, seen = f, set()
        # What is called; through a C wrapper (lru_cache) or a pass-through (*args, **kwargs) wrapper, once each
        # (a __wrapped__ that leads back to itself would loop).
        while id(called) not in seen:
            seen.add(id(called))
            try:
                signature = inspect.signature(called, follow_wrapped=False)
            except (TypeError, ValueError):
                signature = None
            passes_on = signature is not None and signature.parameters and all(
                p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values())
            inner = getattr(called, "__wrapped__", None)
            if not ((signature is None or passes_on) and callable(inner)):
                break
            called = inner
        if signature is None:  # a builtin: nothing to check
            return
        try:
            signature.bind(None, **self.resources)
        except TypeError as err:
            first = "df" if self.vectorized else "x"
            wanted = ", ".join([first, *self.resources])
            raise LFConfigError(
                f"LF {self.name!r}: its function{signature} cannot be called as f({first}, **resources) with "
                f"resources {sorted(self.resources)} ({err}); define it as def {getattr(f, '__name__', 'f')}({wanted}), "
                f"with resources= holding a value for each further parameter"
            ) from None

    @property
    def label_space(self) -> tuple[str, ...] | None:
        """Class names (index = class id), or ``None`` until a registry assigns them."""
        return self._label_space

    @label_space.setter
    def label_space(self, value: Sequence[str] | None) -> None:
        if value is None:
            self._label_space = None
            return
        space = check_label_space(value, owner=f"label space of LF {self.name!r}")
        self._on_label_space(space)  # may raise; nothing is changed then
        self._label_space = space

    def _on_label_space(self, label_space: tuple[str, ...]) -> None:
        """Hook for subclasses that resolve class names once the label space is known."""

    @property
    def cardinality(self) -> int | None:
        """Number of classes, or ``None`` while the label space is unknown."""
        return None if self._label_space is None else len(self._label_space)

    def _description(self) -> dict[str, Any]:
        """What the version hashes, apart from name, kind and label space."""
        if self._described is None:
            unversioned: list[tuple[str, str]] = []
            desc = _describe_function(self.f, self.name, set(), unversioned=unversioned)
            desc["resources"] = self._resources_canonical
            desc["fields"] = list(self.fields) if self.fields is not None else None
            self._unversioned = tuple(dict.fromkeys(unversioned))
            self._described = desc
        return self._described

    @property
    def unversioned_globals(self) -> tuple[tuple[str, str], ...]:
        """``(global name, type name)`` of what the LF reads that its version cannot cover.

        A module global holding data loaded at import (``pd.read_csv(...)``) or an object: edits
        to it leave the version, and so the reused votes, unchanged. The jobs warn about them;
        the fix is a resource, a ``__lakelabel_version__`` string on the object, or ``--force``.
        """
        self._description()
        return self._unversioned

    @property
    def version(self) -> str:
        """12 hex characters identifying what this LF computes; stable across processes."""
        key = (self.name, self._label_space)
        if self._version_cache is None or self._version_cache[0] != key:
            self._version_cache = (key, self._version_of(self._description()))
        return self._version_cache[1]

    @property
    def earlier_versions(self) -> tuple[str, ...]:
        """Versions this LF had, unedited, under an earlier lakelabel whose matching differed.

        Empty but for the builder LFs whose kind's semantics number was bumped
        (:data:`lf_library.builders._KIND_SEMANTICS`): votes of such a version were written by an
        older lakelabel, not by another LF.
        """
        return ()

    def _version_of(self, body: Any) -> str:
        doc = {
            "kind": self.kind,
            "name": self.name,
            "label_space": list(self._label_space) if self._label_space is not None else None,
            "body": body,
        }
        return hashlib.sha256(_dumps(doc).encode("utf-8")).hexdigest()[:12]

    def __call__(self, x: Any) -> int:
        """Vote on one row (a dict, pandas Series or pyspark Row): for notebooks and tests."""
        if type(x).__name__ == "DataFrame":  # pandas or pyspark: both would be read as one row
            how = "lf.f(df) returns the votes of a pandas DataFrame" if self.vectorized else "df.apply(lf, axis=1)"
            raise LFError(f"LF {self.name!r} votes on one row (a dict, pandas Series or Row), not a DataFrame; {how}")
        if self.vectorized:
            import pandas as pd

            df = pd.DataFrame([_as_record(x)])
            if self.fields is not None:
                df = df[list(self.fields)]
            values = np.asarray(self.f(df, **self.resources)).reshape(-1)
            if len(values) != 1:
                raise LFError(f"LF {self.name!r} returned {len(values)} values for a one-row DataFrame")
            value = values[0].item() if isinstance(values[0], np.generic) else values[0]
        else:
            row = _as_row(x)
            if self.fields is not None and isinstance(x, Mapping):
                row = make_row({c: x[c] for c in self.fields if c in x})
            value = self.f(row, **self.resources)
        problem = describe_vote(value, self._label_space)
        if problem is not None:
            raise LFError(f"LF {self.name!r} {problem}")
        return int(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"


def labeling_function(
    name: str | Callable[..., Any] | None = None,
    *,
    label_space: Sequence[str] | None = None,
    resources: Mapping[str, Any] | None = None,
    vectorized: bool = False,
    fields: Sequence[str] | None = None,
    **snorkel: Any,
) -> Any:
    """Decorator turning a function into a :class:`LabelingFunction`.

    Usable bare (``@labeling_function``) or called (``@labeling_function(name="x", ...)``); the
    name defaults to the function's ``__name__``.

    Examples
    --------
    >>> @labeling_function(fields=["text"])
    ... def lf_check_out(x):
    ...     return 1 if "check out" in x.text.lower() else ABSTAIN
    """
    if snorkel:  # Snorkel's decorator takes pre=[...] preprocessors
        key = sorted(snorkel)[0]
        hint = ("lakelabel has no preprocessors: compute the field inside the LF, or write a vectorized LF "
                "(vectorized=True) that derives it for the whole batch at once") if key == "pre" else (
            "its keywords are name, label_space, resources, vectorized, fields")
        raise TypeError(f"labeling_function() got an unexpected keyword argument {key!r}; {hint}")
    if callable(name):  # bare @labeling_function
        f = name
        return LabelingFunction(f.__name__, f)

    def wrap(f: Callable[..., Any]) -> LabelingFunction:
        return LabelingFunction(
            name if name is not None else f.__name__,
            f,
            label_space=label_space,
            resources=resources,
            vectorized=vectorized,
            fields=fields,
        )

    return wrap
