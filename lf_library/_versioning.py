"""How LF versions are computed: canonical JSON of values and descriptions of Python functions.

A version must be the same in every process and on every machine for the same code, so nothing
here depends on ids, hash seeds, line numbers or file paths: sets are sorted, regexes become
pattern + flags, numpy arrays become lists, and a function is described by its normalised source
(dedented, decorators dropped), its closure values, the module constants it reads and the
description of the team's own functions and classes it uses, in its module or any other (see
:func:`_is_project_module`). Globals whose value has no stable description (data loaded into a
module global, an object) cannot be versioned: they are collected so the jobs can say so.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import decimal
import dis
import enum
import functools
import inspect
import json
import logging
import math
import os
import re
import sys
import sysconfig
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
    try:
        own = getattr(value, "__lakelabel_version__", None)
    except Exception:  # noqa: BLE001 - an object whose __getattr__ raises has no version of its own
        own = None
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
                f"LF {lf_name!r}: closure variable {var!r}{err.where} holds {_a(type(err.value).__name__)}, "
                f"which cannot be versioned; pass it as a resource instead "
                f"(resources={{{var!r}: ...}}) holding {_VERSIONABLE}"
            ) from None
    return closure


# ----------------------------------------------------------------------------- whose code it is

#: lakelabel's own packages: an LF that calls them keeps its version when lakelabel changes, as it
#: does when pandas changes (votes are traced to the LF, not to the library it calls).
OWN_PACKAGES = frozenset({"jobs", "lf_library", "labelmodel"})
_LIBRARY_MARKERS = ("site-packages", "dist-packages")
_project_modules: dict[tuple[str, str | None], bool] = {}


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    return tuple(d.rstrip(os.sep) + os.sep for d in sorted(found))


def _is_project_module(name: str | None) -> bool:
    """Whether module ``name`` is the team's own code, followed into when an LF uses it.

    Not the standard library or an installed package (anything under the interpreter's library
    folders or a site-packages/dist-packages folder), and not lakelabel itself: those change with
    the environment, and following them would change every LF's version on an upgrade. A module
    without a file counts only when it is ``__main__`` (code typed into a notebook or a REPL), and
    a module this process has not imported does not. Only this yes/no enters a version, never the
    path. (:meth:`_Uses.follows` also follows the LF's own package when it is pip-installed.)
    """
    if not name or name.partition(".")[0] in OWN_PACKAGES:
        return False
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    # A namespace package (no __init__.py) has no file: its folders say where it lives.
    places = [file] if file else [p for p in getattr(module, "__path__", None) or () if isinstance(p, str)]
    key = (name, file or "|".join(places))
    if key not in _project_modules:
        if not places:
            project = name == "__main__"
        else:
            reals = [os.path.realpath(place) for place in places]
            project = all(not any(m in real.split(os.sep) for m in _LIBRARY_MARKERS)
                          and not (real + os.sep).startswith(_library_dirs()) for real in reals)
        _project_modules[key] = project
    return _project_modules[key]


# ----------------------------------------------------------------------------- what a function uses

_ATTRIBUTE_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_LIBRARY_CALLABLES = (
    types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType,
    types.MethodDescriptorType, types.ClassMethodDescriptorType, np.ufunc,
)  # fmt: skip


def _global_chains(code: types.CodeType) -> set[tuple[str, ...]]:
    """Dotted names the code reads from its globals: ``util.norm(x)`` gives ``("util", "norm")``.

    Read from the bytecode (a global load and the attribute loads right after it), so ``x.norm``
    on a row is not mistaken for the module function ``norm``.
    """
    chains: set[tuple[str, ...]] = set()
    chain: list[str] | None = None
    for ins in dis.get_instructions(code):
        if chain is not None and ins.opname in _ATTRIBUTE_OPS:
            chain.append(ins.argval)
            continue
        if chain is not None:
            chains.add(tuple(chain))
        chain = [ins.argval] if ins.opname == "LOAD_GLOBAL" else None
    if chain is not None:
        chains.add(tuple(chain))
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            chains |= _global_chains(c)
    return chains


def _class_members(raw: Any) -> list[tuple[str, Any]]:
    """The functions behind a class attribute: a method, a static/class method, a property's accessors."""
    if isinstance(raw, (staticmethod, classmethod)):
        raw = raw.__func__
    if isinstance(raw, functools.cached_property):
        raw = raw.func
    if isinstance(raw, property):
        return [(part, fn) for part, fn in (("get", raw.fget), ("set", raw.fset), ("del", raw.fdel)) if fn is not None]
    return [("", raw)] if isinstance(raw, types.FunctionType) else []


class _Uses:
    """Collects what one function uses beyond its source: the team's functions, classes and objects,
    module constants reached through a module (``util.WORDS``), and the globals that cannot be versioned.
    """

    def __init__(self, f: Callable, lf_name: str, seen: set[int], unversioned: list | None, root: str | None):
        self.module = getattr(f, "__module__", None)
        self.lf_name, self.seen, self.unversioned, self.root = lf_name, seen, unversioned, root
        self.consts: dict[str, Any] = {}
        self.helpers: dict[str, Any] = {}
        self.classes: dict[str, Any] = {}
        self.objects: dict[str, Any] = {}

    def follows(self, module: str | None) -> bool:
        """Whether code of ``module`` is the team's: the function's own module, a project module, or
        a module of the LF's own package (the team's code even when it is pip-installed)."""
        if module == self.module or _is_project_module(module):
            return True
        package = (self.root or "").partition(".")[0]
        return bool(module) and package not in OWN_PACKAGES and module.partition(".")[0] == package

    def function(self, key: str, f: Callable) -> None:
        if id(f) not in self.seen:
            self.helpers[key] = _describe_function(
                f, self.lf_name, self.seen, strict=False, unversioned=self.unversioned, _root=self.root
            )

    def value(self, key: str, value: Any) -> None:
        """A global (or a module's attribute) the function reads that is not plain data."""
        try:
            self._value(key, value)
        except Exception:  # noqa: BLE001 - an object whose attributes raise: named, never a failed load
            self.unversionable(key, value)

    def _value(self, key: str, value: Any) -> None:
        if isinstance(value, types.FunctionType):
            if self.follows(value.__module__):
                self.function(key, value)
            return
        if isinstance(value, _LIBRARY_CALLABLES) and not isinstance(getattr(value, "__self__", None),
                                                                    (types.ModuleType, type(None))):
            # a bound method of data (WORDS.__contains__, LOOKUP.get, PATTERN.search): the data is versioned
            self._value(key, value.__self__)
            return
        if isinstance(value, types.ModuleType) or isinstance(value, _LIBRARY_CALLABLES):
            return
        if isinstance(value, type):
            if self.follows(value.__module__) and id(value) not in self.seen:
                self.classes[key] = self.describe_class(value)
            return
        if isinstance(value, types.MethodType):  # a bound method: its object's class holds the code
            self.value(key, value.__self__)
            return
        try:
            wrapped = inspect.unwrap(value)
        except ValueError:  # a __wrapped__ chain that loops
            wrapped = value
        if wrapped is not value and isinstance(wrapped, types.FunctionType):  # lru_cache, functools.wraps
            self.value(key, wrapped)
            return
        if isinstance(value, functools.partial):  # the team's function with bound data: both decide the votes
            try:
                bound = _canonical([list(value.args), dict(value.keywords)])
            except _NotCanonical:
                self.unversionable(key, value)
                bound = {"$unversioned": "partial arguments"}
            self.consts[key] = {"$partial": bound}
            if isinstance(value.func, types.FunctionType) and self.follows(value.func.__module__):
                self.function(key, value.func)
            return
        cls = type(value)
        ours = self.follows(cls.__module__)
        if not ours and (callable(value) or isinstance(value, (logging.Logger, logging.LoggerAdapter))):
            return  # a library's callable (numpy's where, a partial) or logger: library code, not the team's
        if ours and id(cls) not in self.seen:
            self.objects[key] = self.describe_class(cls)
        try:
            self.consts[key] = _canonical(value)  # an object with __lakelabel_version__
            return
        except _NotCanonical:
            pass
        state = getattr(value, "__dict__", None) if ours else None
        if isinstance(state, dict):  # an object of the team's class holding plain data: class + data
            try:
                self.consts[key] = {"$state": _canonical(state)}
                return
            except _NotCanonical:
                pass
        self.unversionable(key, value)

    def unversionable(self, key: str, value: Any, module: str | None = None) -> None:
        """Note ``key`` (qualified by its module when that is not the LF's) as read but not versioned."""
        module = module or self.module
        if self.unversioned is not None:
            where = key if module == self.root else f"{module}.{key}"
            self.unversioned.append((where, type(value).__name__))

    def module_attribute(self, chain: tuple[str, ...], module: types.ModuleType) -> None:
        """``util.norm`` / ``pkg.util.WORDS``: walk the team's modules along the chain to the value."""
        obj: Any = module
        key = chain[0]
        for attr in chain[1:]:
            if not isinstance(obj, types.ModuleType) or not self.follows(obj.__name__):
                return
            try:
                obj = getattr(obj, attr)
            except Exception:  # not there (yet), or a module __getattr__ that refuses
                return
            key = f"{key}.{attr}"
            if not isinstance(obj, types.ModuleType):
                try:
                    self.consts[key] = _canonical(obj)
                except _NotCanonical:
                    self.value(key, obj)
                return

    def describe_class(self, cls: type) -> dict[str, Any]:
        """Methods (and plain-data class attributes) of ``cls`` and of the team's classes it derives
        from, by name: editing a method, a property or a class constant changes the version."""
        self.seen.add(id(cls))
        desc: dict[str, Any] = {}
        for klass in cls.__mro__:
            if klass is object or not (klass.__module__ == cls.__module__ or self.follows(klass.__module__)):
                continue
            members: dict[str, Any] = {}
            for attr in sorted(vars(klass)):
                raw = vars(klass)[attr]
                functions = _class_members(raw)
                for part, fn in functions:  # not what a library put in the class (enum's __new__)
                    ours = fn.__module__ == klass.__module__ or self.follows(fn.__module__)
                    if ours and id(fn) not in self.seen:
                        members[f"{attr}:{part}" if part else attr] = _describe_function(
                            fn, self.lf_name, self.seen, strict=False, unversioned=self.unversioned, _root=self.root
                        )
                if functions or (attr[:1] == "_" and attr[-1:] == "_"):  # dunder and enum's _sunder_ names
                    continue
                if isinstance(raw, enum.Enum):
                    raw = raw.value
                if isinstance(raw, type):
                    if self.follows(raw.__module__) and id(raw) not in self.seen:
                        members[attr] = {"$class": self.describe_class(raw)}
                    continue
                try:
                    members[attr] = {"$value": _canonical(raw)}
                except _NotCanonical:
                    if not callable(raw) and not isinstance(raw, (types.ModuleType, types.MemberDescriptorType)):
                        self.unversionable(f"{klass.__name__}.{attr}", raw, klass.__module__)
            desc[klass.__qualname__] = members
        return desc


def _describe_function(
    f: Callable,
    lf_name: str,
    seen: set[int],
    *,
    strict: bool = True,
    unversioned: list[tuple[str, str]] | None = None,
    _root: str | None = None,
) -> dict[str, Any]:
    """Source, closure values, module constants and the team's functions and classes ``f`` uses.

    Module-level names that ``f`` reads are included when they hold versionable constants (a
    keyword list, a threshold), functions defined in the same module or in another of the team's
    modules (``from util import norm``, ``util.norm``), the team's classes (their methods), or
    objects of the team's classes (their class), all described recursively; so editing a helper,
    a method or a constant changes the LF version. Installed libraries and lakelabel are left out,
    so an LF that calls pandas keeps its version. A global holding anything else (a DataFrame
    read from a file, an object) cannot be versioned: ``(name, type name)`` is appended to
    ``unversioned`` so the caller can warn that edits to it leave the version unchanged.

    Descriptions of LFs that use only same-module helpers and constants are exactly those of
    before the other modules were followed, so their stored votes keep matching.
    """
    seen.add(id(f))
    desc: dict[str, Any] = {"source": _function_source(f)}
    code = getattr(f, "__code__", None)
    if isinstance(f, functools.partial):  # LabelingFunction("p", partial(has, words=WORDS)): function and arguments
        uses = _Uses(f.func, lf_name, seen, unversioned, _root or getattr(f.func, "__module__", None))
        uses.value("partial", f)
        desc["partial"] = {key: part for key, part in (("bound", uses.consts), ("function", uses.helpers)) if part}
        return desc
    if code is None:  # a callable object or a builtin: its source was described above
        return desc
    closure = _closure_description(f, lf_name, seen, strict=strict)
    if closure:
        desc["closure"] = closure
    defaults = _defaults_description(f, lf_name, seen, unversioned, _root)
    if defaults:  # only when there are defaults, so the versions of LFs without them stay as they were
        desc["defaults"] = defaults

    uses = _Uses(f, lf_name, seen, unversioned, _root or getattr(f, "__module__", None))
    f_globals = getattr(f, "__globals__", {})
    chains = _global_chains(code)
    read = {c[0] for c in chains}  # names loaded as globals, not only as attributes (x.text)
    for name in sorted(_referenced_names(code)):
        if name not in f_globals:
            continue
        value = f_globals[name]
        if isinstance(value, types.FunctionType) and value.__module__ == uses.module:
            uses.function(name, value)
            continue
        if not isinstance(value, (types.FunctionType, types.ModuleType, type)) and not callable(value):
            try:
                uses.consts[name] = _canonical(value)
                continue
            except _NotCanonical:
                pass
        if name in read:
            uses.value(name, value)
    for chain in sorted(c for c in chains if len(c) > 1):
        module = f_globals.get(chain[0])
        if isinstance(module, types.ModuleType):
            uses.module_attribute(chain, module)
    for key, part in (("globals", uses.consts), ("helpers", uses.helpers), ("classes", uses.classes),
                      ("objects", uses.objects)):
        if part:
            desc[key] = part
    return desc


def _defaults_description(f: Callable, lf_name: str, seen: set[int], unversioned: list | None,
                          root: str | None) -> dict[str, Any]:
    """Values of ``f``'s default arguments (``def lf(x, words=WORDS)`` binds WORDS when the def runs, so the
    source shows only the name and the code never loads the global): plain data as canonical JSON, anything else
    as a global would be (:class:`_Uses`: the team's functions, classes and objects described, a library's
    functions, builtins and modules left out, the rest noted as unversioned under ``f(name=...)``)."""
    out: dict[str, Any] = {}
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):  # a callable without a signature Python can read: no defaults to see
        return out
    uses = _Uses(f, lf_name, seen, unversioned, root or getattr(f, "__module__", None))
    for name, param in params.items():
        value = param.default
        if value is inspect.Parameter.empty or value is dataclasses.MISSING or \
                type(value).__name__ == "_HAS_DEFAULT_FACTORY_CLASS":  # a dataclass __init__'s markers, not data
            continue
        key = f"{f.__qualname__}({name}=...)"
        try:
            out[name] = _canonical(value)
            continue
        except _NotCanonical:
            pass
        except Exception:  # noqa: BLE001 - a list that holds itself, a __lakelabel_version__ that raises
            uses.unversionable(key, value)
            continue
        uses.value(key, value)
    for kind, part in (("value", uses.consts), ("function", uses.helpers), ("class", uses.classes),
                       ("object", uses.objects)):
        for key, desc in part.items():
            out.setdefault(key.partition("(")[2].partition("=")[0], {})[f"${kind}"] = desc
    return out


def canonical_resources(resources: Mapping[str, Any], lf_name: str) -> dict[str, Any]:
    out = {}
    for key in sorted(resources):
        try:
            out[key] = _canonical(resources[key])
        except _NotCanonical as err:
            raise TypeError(
                f"LF {lf_name!r}: resource {key!r}{err.where} is {_a(type(err.value).__name__)}, which "
                f"cannot be versioned; pass {_VERSIONABLE} instead"
            ) from None
    return out


def _a(noun: str) -> str:
    """``noun`` with its article: "a list", "an object"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
