"""Labeling functions: a named callable that votes a class id or abstains, with a stable version.

An LF is a small Python function wrapped with a name, optional explicit ``resources`` (keyword
arguments bound at call time) and the label space it votes in::

    @labeling_function(resources={"words": {"subscribe", "check out"}})
    def lf_spammy(x, words):
        return 1 if any(w in x.text.lower() for w in words) else ABSTAIN

Every LF has a :attr:`~LabelingFunction.version`: 12 hex characters of a sha256 over a canonical
description of what it computes (kind, name, label space, normalised source, closure values,
referenced module constants and helpers, resources). The same code gives the same version in every
process and on every machine, so votes written to Delta can be traced to the exact LF that cast them.
"""

from __future__ import annotations

import ast
import datetime as _dt
import decimal
import functools
import hashlib
import inspect
import json
import math
import re
import textwrap
import types
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

from lf_library.errors import LFConfigError, LFError

__all__ = ["ABSTAIN", "LabelingFunction", "labeling_function", "make_row", "canonical_json"]

ABSTAIN = -1

_KINDS = ("python", "vectorized", "keyword", "regex", "sql", "lexicon")
_MAX_NAME = 200


# ----------------------------------------------------------------------------- canonical JSON


class _NotCanonical(TypeError):
    """Raised inside :func:`_canonical`; ``where`` locates the bad value inside the structure."""

    def __init__(self, where: str, value: Any) -> None:
        super().__init__(where)
        self.where = where
        self.value = value


def _canonical(value: Any, where: str = "") -> Any:
    """Turn ``value`` into plain JSON data whose dump is the same in every process."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else {"$float": repr(f)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_canonical(v, f"{where}{{...}}") for v in value]
        return {"$set": sorted(items, key=_dumps)}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: _canonical(v, f"{where}[{k!r}]") for k, v in value.items()}
        pairs = [[_canonical(k, f"{where}(key)"), _canonical(v, f"{where}[{k!r}]")] for k, v in value.items()]
        return {"$items": sorted(pairs, key=lambda p: _dumps(p[0]))}
    if isinstance(value, re.Pattern):
        return {"$regex": _canonical(value.pattern, where), "flags": int(value.flags)}
    if isinstance(value, np.ndarray):
        data = _canonical(value.tolist(), where)
        return {"$array": data, "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return {"$datetime": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, PurePath):
        return {"$path": value.as_posix()}
    own = getattr(value, "__lakelabel_version__", None)
    if own is not None and not isinstance(value, type):
        own = own() if callable(own) else own
        if isinstance(own, str):
            return {"$object": f"{type(value).__module__}.{type(value).__qualname__}", "version": own}
    raise _NotCanonical(where, value)


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical_json(value: Any) -> str:
    """Canonical JSON text of ``value`` (sets sorted, regex as pattern + flags, numpy as lists).

    Raises
    ------
    TypeError
        When ``value`` holds something without a stable description (an arbitrary object).
    """
    try:
        return _dumps(_canonical(value))
    except _NotCanonical as err:
        raise TypeError(
            f"value{err.where} of type {type(err.value).__name__} has no canonical JSON form"
        ) from None


_VERSIONABLE = (
    "str, int, float, bool, None, list, tuple, set, dict, a compiled re pattern, a numpy array, "
    "or an object with a string attribute __lakelabel_version__"
)


# ----------------------------------------------------------------------------- source description


def _normalise_source(src: str) -> str:
    """Dedent, drop decorator lines before ``def``, strip trailing blanks, use ``\\n`` line ends."""
    src = textwrap.dedent(src.replace("\r\n", "\n").replace("\r", "\n"))
    lines = src.split("\n")
    try:
        tree = ast.parse(src)
    except SyntaxError:  # a lambda cut out of a larger expression: keep the lines as they are
        tree = None
    if tree is not None and tree.body and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = lines[tree.body[0].lineno - 1 :]  # lineno of a def is the `def` line, after decorators
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _code_description(code: types.CodeType) -> dict[str, Any]:
    """Fallback when the source is unavailable (exec'd code): stable within one Python version."""
    consts = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            consts.append(_code_description(c))
        else:
            try:
                consts.append(_canonical(c))
            except _NotCanonical:
                consts.append(repr(type(c)))
    return {
        "python": "%d.%d" % tuple(__import__("sys").version_info[:2]),
        "bytecode": code.co_code.hex(),
        "consts": consts,
        "names": list(code.co_names),
        "varnames": list(code.co_varnames),
    }


def _function_source(f: Callable) -> str | dict[str, Any]:
    try:
        return _normalise_source(inspect.getsource(f))
    except (OSError, TypeError):
        code = getattr(f, "__code__", None)
        if code is None:
            return {"callable": f"{type(f).__module__}.{type(f).__qualname__}"}
        return _code_description(code)


def _referenced_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _referenced_names(c)
    return names


def _closure_description(f: Callable, lf_name: str, seen: set[int], *, strict: bool) -> dict[str, Any]:
    """Canonical values of the closure cells of ``f``.

    ``strict`` (the LF's own function) raises TypeError on a value without a canonical form;
    otherwise (helpers) such a value is described by its type name only.
    """
    code = f.__code__
    closure: dict[str, Any] = {}
    for var, cell in zip(code.co_freevars, getattr(f, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # the enclosing scope has not assigned it yet
            closure[var] = {"$empty": True}
            continue
        if isinstance(value, types.FunctionType):
            closure[var] = (
                {"$function": value.__qualname__}
                if id(value) in seen
                else {"$function": _describe_function(value, lf_name, seen, strict=False)}
            )
            continue
        try:
            closure[var] = _canonical(value)
        except _NotCanonical as err:
            if not strict:
                closure[var] = {"$unversioned": type(value).__name__}
                continue
            raise TypeError(
                f"LF {lf_name!r}: closure variable {var!r}{err.where} holds a {type(err.value).__name__}, "
                f"which cannot be versioned; pass it as a resource instead "
                f"(resources={{{var!r}: ...}}) holding {_VERSIONABLE}"
            ) from None
    return closure


def _describe_function(f: Callable, lf_name: str, seen: set[int], *, strict: bool = True) -> dict[str, Any]:
    """Source, closure values, referenced module constants and same-module helper functions of ``f``.

    Module-level names that ``f`` reads are included when they hold versionable constants (a
    keyword list, a threshold) or functions defined in the same module (described recursively),
    so editing a helper or a constant changes the LF version. Other globals (modules, classes,
    library functions, objects without a canonical form) are left out.
    """
    seen.add(id(f))
    desc: dict[str, Any] = {"source": _function_source(f)}
    code = getattr(f, "__code__", None)
    if code is None:  # a callable object or a builtin: its source was described above
        return desc
    closure = _closure_description(f, lf_name, seen, strict=strict)
    if closure:
        desc["closure"] = closure

    module = getattr(f, "__module__", None)
    f_globals = getattr(f, "__globals__", {})
    consts: dict[str, Any] = {}
    helpers: dict[str, Any] = {}
    for name in sorted(_referenced_names(code)):
        if name not in f_globals:
            continue
        value = f_globals[name]
        if isinstance(value, types.FunctionType):
            if value.__module__ == module and id(value) not in seen:
                helpers[name] = _describe_function(value, lf_name, seen, strict=False)
            continue
        if isinstance(value, (types.ModuleType, type)) or callable(value):
            continue
        try:
            consts[name] = _canonical(value)
        except _NotCanonical:
            continue
    if consts:
        desc["globals"] = consts
    if helpers:
        desc["helpers"] = helpers
    return desc


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


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise LFConfigError(f"an LF name must be a non-empty string, got {name!r}")
    if name != name.strip() or any(ch in name for ch in "\n\r\t") or len(name) > _MAX_NAME:
        raise LFConfigError(
            f"LF name {name!r} is invalid: use at most {_MAX_NAME} characters, no tabs, newlines "
            f"or surrounding spaces (e.g. 'kw_subscribe')"
        )
    return name


def check_label_space(label_space: Any, *, owner: str = "label_space") -> tuple[str, ...]:
    """Validate a label space and return it as a tuple of class names.

    Raises
    ------
    LFConfigError
        When it is not a sequence of at least two distinct non-empty strings.
    """
    if isinstance(label_space, (str, bytes)) or not isinstance(label_space, Sequence):
        raise LFConfigError(
            f"{owner} must be a sequence of class names such as ['ham', 'spam'], got {label_space!r}"
        )
    names = tuple(label_space)
    bad = [c for c in names if not isinstance(c, str) or not c]
    if bad:
        raise LFConfigError(f"{owner} must hold non-empty strings; bad entries: {bad!r}")
    if len(names) < 2:
        raise LFConfigError(f"{owner} needs at least two classes, got {list(names)!r}")
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise LFConfigError(f"{owner} must hold distinct class names; duplicated: {dupes}")
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


def _canonical_resources(resources: Mapping[str, Any], lf_name: str) -> dict[str, Any]:
    out = {}
    for key in sorted(resources):
        try:
            out[key] = _canonical(resources[key])
        except _NotCanonical as err:
            raise TypeError(
                f"LF {lf_name!r}: resource {key!r}{err.where} is a {type(err.value).__name__}, which "
                f"cannot be versioned; pass {_VERSIONABLE} instead"
            ) from None
    return out


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
    return f"returned {shown} ({type(value).__name__}); expected an int class id or -1 (ABSTAIN); {_space_text(label_space, k)}"


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

    kind: str

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
        self._resources_canonical = _canonical_resources(self.resources, name)
        self._described: dict[str, Any] | None = None
        # Closure cells are checked now, so an unversionable closure fails where the LF is defined.
        self._closure_check(f)
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
            desc = _describe_function(self.f, self.name, set())
            desc["resources"] = self._resources_canonical
            desc["fields"] = list(self.fields) if self.fields is not None else None
            self._described = desc
        return self._described

    @property
    def version(self) -> str:
        """12 hex characters identifying what this LF computes; stable across processes."""
        key = (self.name, self._label_space)
        if self._version_cache is None or self._version_cache[0] != key:
            doc = {
                "kind": self.kind,
                "name": self.name,
                "label_space": list(self._label_space) if self._label_space is not None else None,
                "body": self._description(),
            }
            digest = hashlib.sha256(_dumps(doc).encode("utf-8")).hexdigest()[:12]
            self._version_cache = (key, digest)
        return self._version_cache[1]

    def __call__(self, x: Any) -> int:
        """Vote on one row (a dict, pandas Series or pyspark Row): for notebooks and tests."""
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
