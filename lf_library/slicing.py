"""Slicing functions: named, versioned boolean predicates that pick out a subset of rows.

A slice is to analysis what an LF is to labeling: ``lakelabel analyze`` reports, per slice, its
size, coverage, label distribution and accuracy against gold, so a weak spot (tickets that
mention a login, comments with a link) shows up as a number. Slices are written like LFs::

    @slicing_function(fields=["text"])
    def long_ticket(x):
        return len(x.text) > 300

    login = keyword_slice("mentions_login", ["login", "log in"])
    phone = sql_slice("phone_channel", "channel = 'phone'")

and listed by module under ``slices.modules`` in the config. Versions are computed like LF
versions (:mod:`lf_library._versioning`): the same code gives the same version everywhere.
A Python slicing function must return a bool; anything else (or an exception) is reported by
the analyze job as an input error naming the slice, the row count and an example.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

from lf_library._fresh import import_fresh
from lf_library._versioning import _describe_function, _dumps, canonical_resources
from lf_library.apply import _column_values
from lf_library.builders import (_any_keyword, _check_keywords, _check_pattern, _check_terms, _check_user_regex,
                                 _matches, _text_column, match_text)
from lf_library.core import _as_row, _check_fields, _check_name, _check_resources, _row_class
from lf_library.errors import ConfigError, LFConfigError

__all__ = ["SlicingFunction", "slicing_function", "keyword_slice", "regex_slice", "sql_slice", "load_slices",
           "evaluate_slices"]

# Bump when the matching semantics of the declarative slices change.
_SEMANTICS = 1
_KIND_SEMANTICS = {"keyword": 3}  # 2: keyword slices compare in Unicode NFC; 3: whitespace, apostrophes folded


class SlicingFunction:
    """A named boolean predicate over rows (``kind``: python, keyword, regex or sql).

    Parameters
    ----------
    name : str
        Unique among the slices of one config.
    f : callable, optional
        ``f(x, **resources) -> bool`` for a Python slice (``x.text``, ``x["text"]``).
    spec : dict, optional
        The description of a declarative slice (built by :func:`keyword_slice`, :func:`regex_slice`,
        :func:`sql_slice`); exactly one of ``f`` and ``spec``.
    resources : mapping, optional
        Keyword arguments passed to ``f``; part of the version.
    fields : sequence of str, optional
        Columns ``f`` reads (default: all).
    """

    def __init__(
        self,
        name: str,
        f: Callable[..., Any] | None = None,
        *,
        spec: dict[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
    ) -> None:
        self.name = _check_name(name, logged=False)  # a slice's name is never an MLflow key
        if (f is None) == (spec is None):
            raise LFConfigError(f"slice {name!r}: give a function or a declarative spec (not both, not neither)")
        if f is not None and not callable(f):
            raise LFConfigError(f"slice {name!r}: f must be callable, got {type(f).__name__}")
        self.f = f
        self.spec = spec
        self.kind = "python" if f is not None else spec["kind"]
        self.resources = _check_resources(resources, name)
        self.fields = _check_fields(fields, name)
        self._version: str | None = None
        self.__doc__ = getattr(f, "__doc__", None)

    @property
    def version(self) -> str:
        """12 hex characters identifying what this slice selects; stable across processes."""
        if self._version is None:
            if self.f is not None:
                body: dict[str, Any] = _describe_function(self.f, self.name, set())
                body["resources"] = canonical_resources(self.resources, self.name)
                body["fields"] = list(self.fields) if self.fields is not None else None
            else:
                body = {"spec": self.spec, "semantics": _KIND_SEMANTICS.get(self.kind, _SEMANTICS)}
            doc = {"kind": f"slice:{self.kind}", "name": self.name, "body": body}
            self._version = hashlib.sha256(_dumps(doc).encode("utf-8")).hexdigest()[:12]
        return self._version

    def spark_column(self) -> Any:
        """A SQL slice as a boolean pyspark Column (NULL counts as False)."""
        if self.kind != "sql":
            raise LFConfigError(f"slice {self.name!r} is a {self.kind} slice; only sql slices are Spark columns")
        from pyspark.sql import functions as F

        return F.coalesce(F.expr(f"({self.spec['condition']})").cast("boolean"), F.lit(False))

    def evaluate_arrow(self, batch: pa.RecordBatch | pa.Table) -> tuple[np.ndarray, int, str | None]:
        """``(mask, bad_rows, example_problem)`` for a python, keyword or regex slice over a batch.

        Rows where a Python slice raises or returns a non-boolean count as ``bad_rows`` (and are
        out of the slice); ``example_problem`` describes the first one.
        """
        if self.kind == "keyword":
            s = self.spec
            col = match_text(_text_column(batch, s["field"], self.name))
            return _any_keyword(col, s["keywords"], case_sensitive=s["case_sensitive"],
                                whole_word=s["whole_word"]), 0, None
        if self.kind == "regex":
            s = self.spec
            col = _text_column(batch, s["field"], self.name)
            return _matches(col, s["pattern"] if s["case_sensitive"] else "(?i)" + s["pattern"]), 0, None
        if self.kind != "python":
            raise LFConfigError(f"slice {self.name!r}: {self.kind} slices run on Spark (spark_column())")
        cols = tuple(batch.schema.names) if self.fields is None else self.fields
        missing = [c for c in cols if c not in batch.schema.names]
        if missing:
            raise ConfigError(f"slice {self.name!r} reads column(s) {missing}, not in the source (columns: "
                              f"{batch.schema.names}); fix its fields=")
        cls = _row_class(cols)
        values = [_column_values(batch.column(c)) for c in cols]
        rows = [tuple.__new__(cls, v) for v in zip(*values)] if cols else [tuple.__new__(cls, ())] * batch.num_rows
        mask = np.zeros(len(rows), dtype=bool)
        bad, example = 0, None
        for i, row in enumerate(rows):
            try:
                value = self.f(row, **self.resources)
            except Exception as err:  # noqa: BLE001 - reported with the slice's name by the job
                bad += 1
                example = example or f"raised {type(err).__name__}: {err}"
                continue
            if isinstance(value, (bool, np.bool_)):
                mask[i] = bool(value)
            else:
                bad += 1
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                example = example or f"returned {shown} ({type(value).__name__})"
        return mask, bad, example

    def __call__(self, x: Any) -> bool:
        """Evaluate on one row (a dict, pandas Series or pyspark Row): for notebooks and tests."""
        if self.kind == "sql":
            raise LFConfigError(f"slice {self.name!r} is a sql slice; evaluate it with spark_column() on Spark")
        if self.kind != "python":
            from lf_library.core import _as_record

            record = _as_record(x)
            table = pa.table({self.spec["field"]: pa.array([record.get(self.spec["field"])], pa.string())})
            return bool(self.evaluate_arrow(table)[0][0])
        value = self.f(_as_row(x), **self.resources)
        if not isinstance(value, (bool, np.bool_)):
            raise LFConfigError(f"slice {self.name!r} returned {value!r} ({type(value).__name__}); return True or False")
        return bool(value)

    def __repr__(self) -> str:
        return f"SlicingFunction(name={self.name!r}, kind={self.kind!r})"


def slicing_function(
    name: str | Callable[..., Any] | None = None,
    *,
    resources: Mapping[str, Any] | None = None,
    fields: Sequence[str] | None = None,
) -> Any:
    """Decorator turning ``f(x) -> bool`` into a :class:`SlicingFunction` (bare or called)."""
    if callable(name):
        return SlicingFunction(name.__name__, name)

    def wrap(f: Callable[..., Any]) -> SlicingFunction:
        return SlicingFunction(name if name is not None else f.__name__, f, resources=resources, fields=fields)

    return wrap


def keyword_slice(
    name: str, keywords: Sequence[str], *, field: str = "text", case_sensitive: bool = False, whole_word: bool = True
) -> SlicingFunction:
    """Rows whose ``field`` contains any of ``keywords`` (matched like :func:`lf_library.keyword_lf`)."""
    words = _check_terms(keywords, name, "keywords")
    _check_keywords(words, name, "keywords", case_sensitive=bool(case_sensitive), whole_word=bool(whole_word))
    spec = {"kind": "keyword", "keywords": words, "field": field, "case_sensitive": bool(case_sensitive),
            "whole_word": bool(whole_word)}
    return SlicingFunction(name, spec=spec, fields=(field,))


def regex_slice(name: str, pattern: str, *, field: str = "text", case_sensitive: bool = False) -> SlicingFunction:
    """Rows where the RE2 ``pattern`` matches ``field`` (like :func:`lf_library.regex_lf`)."""
    if not isinstance(pattern, str) or not pattern:
        raise LFConfigError(f"slice {name!r}: pattern must be a non-empty regex string, got {pattern!r}")
    _check_pattern(pattern if case_sensitive else "(?i)" + pattern, name, f"pattern '{pattern}'")
    _check_user_regex(pattern, name, case_sensitive=bool(case_sensitive), what="slice")
    spec = {"kind": "regex", "pattern": pattern, "field": field, "case_sensitive": bool(case_sensitive)}
    return SlicingFunction(name, spec=spec, fields=(field,))


def sql_slice(name: str, condition: str) -> SlicingFunction:
    """Rows where the Spark SQL boolean ``condition`` holds (NULL: not in the slice)."""
    if not isinstance(condition, str) or not condition.strip():
        raise LFConfigError(f"slice {name!r}: condition must be a non-empty Spark SQL expression, got {condition!r}")
    return SlicingFunction(name, spec={"kind": "sql", "condition": condition.strip()})


def _import(module: str) -> ModuleType:
    if not isinstance(module, str) or not module:
        raise ConfigError(f"slices.modules lists dotted module names such as 'lf_library.lfs.demo_slices', got {module!r}")
    try:
        return import_fresh(module)  # as on disk now, in a notebook too
    except Exception as err:  # noqa: BLE001 - any import failure is a config problem named here
        raise ConfigError(
            f"slice module {module!r} (slices.modules) failed to import: {type(err).__name__}: {err}; fix the module "
            f"or remove it from slices.modules"
        ) from err


def load_slices(modules: Sequence[str]) -> tuple[SlicingFunction, ...]:
    """Import slice modules and return every :class:`SlicingFunction` they define, sorted by name.

    Raises
    ------
    ConfigError
        A module fails to import or defines no slice, or two slices share a name.
    """
    found: dict[str, tuple[SlicingFunction, str]] = {}
    for module in modules:
        mod = _import(module)
        mine = {id(v): v for v in vars(mod).values() if isinstance(v, SlicingFunction)}
        if not mine:
            raise ConfigError(f"slice module {module!r} defines no SlicingFunction; use @slicing_function, "
                              f"keyword_slice, regex_slice or sql_slice, or remove it from slices.modules")
        for sf in mine.values():
            if sf.name in found and found[sf.name][0] is not sf:
                raise ConfigError(f"slice names must be unique; {sf.name!r} is defined in {found[sf.name][1]} and "
                                  f"in {module}; rename one of them")
            found[sf.name] = (sf, module)
    return tuple(found[name][0] for name in sorted(found))


def evaluate_slices(
    slices: Sequence[SlicingFunction], batch: pa.RecordBatch | pa.Table, precomputed: Mapping[str, str]
) -> tuple[np.ndarray, list[tuple[int, str | None]]]:
    """Masks ``[n, len(slices)]`` and per slice ``(bad_rows, example)`` for one Arrow batch.

    SQL slices come precomputed as boolean columns named by ``precomputed[slice.name]``.
    """
    n = batch.num_rows
    masks = np.zeros((n, len(slices)), dtype=bool)
    problems: list[tuple[int, str | None]] = []
    for j, sf in enumerate(slices):
        if sf.name in precomputed:
            col = batch.column(precomputed[sf.name])
            masks[:, j] = np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
            problems.append((0, None))
        else:
            mask, bad, example = sf.evaluate_arrow(batch)
            masks[:, j] = mask
            problems.append((bad, example))
    return masks, problems
