"""How LF versions are computed: canonical JSON of values and descriptions of Python functions.

A version must be the same in every process and on every machine for the same code, so nothing
here depends on ids, hash seeds, line numbers or file paths: sets are sorted, regexes become
pattern + flags, numpy arrays become lists, and a function is described by its normalised source
(dedented, decorators dropped), its closure values, the module constants it reads and the source
of the same-module helpers it calls.
"""

from __future__ import annotations

import ast
import datetime as _dt
import decimal
import inspect
import json
import math
import re
import sys
import textwrap
import types
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["canonical_json"]


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
        "python": "%d.%d" % sys.version_info[:2],
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


def canonical_resources(resources: Mapping[str, Any], lf_name: str) -> dict[str, Any]:
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
