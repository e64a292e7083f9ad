"""The LF registry: the named, versioned set of LFs one job applies, sharing one label space."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType

from lf_library._fresh import import_fresh
from lf_library._versioning import _dumps
from lf_library.core import LabelingFunction, check_label_space
from lf_library.errors import LFConfigError

__all__ = ["LFRegistry", "load_registry", "module_lfs", "unknown_names_error"]


def unknown_names_error(lists: dict[str, Iterable[str] | None], known: Sequence[str],
                        what: str = "known LFs") -> str | None:
    """The one error for the names of ``lists`` (its config key -> LF names) that ``known`` lacks, naming each key
    that holds one; None when every name is known."""
    have = set(known)
    named = {key: sorted({n for n in names or [] if n not in have}) for key, names in lists.items()}
    where = [key for key, unknown in named.items() if unknown]
    if not where:
        return None
    return ("; ".join(f"{key}: unknown LF name(s) {named[key]}" for key in where)
            + f"; {what}: {list(known)}: fix the name or remove it from {' and '.join(where)}")


class LFRegistry:
    """LFs with unique names voting in one label space.

    Parameters
    ----------
    label_space : sequence of str
        Class names; class id = position.

    Examples
    --------
    >>> reg = LFRegistry(["ham", "spam"])
    >>> reg.register(keyword_lf("kw_subscribe", ["subscribe"], "spam"))  # doctest: +SKIP
    """

    def __init__(self, label_space: Sequence[str]) -> None:
        self._label_space = check_label_space(label_space)
        self._lfs: dict[str, LabelingFunction] = {}
        self._origin: dict[str, str] = {}

    def register(self, lf: LabelingFunction, *, origin: str | None = None) -> LabelingFunction:
        """Add ``lf``, assigning the registry's label space when the LF has none; returns ``lf``.

        Raises
        ------
        LFConfigError
            Duplicate name, or the LF's own label space differs from the registry's.
        """
        if not isinstance(lf, LabelingFunction):
            raise TypeError(f"register() takes a LabelingFunction, got {type(lf).__name__}: {lf!r}")
        if lf.name in self._lfs:
            where = ""
            if origin or self._origin.get(lf.name):
                where = f" (defined in {self._origin.get(lf.name, '?')} and in {origin or '?'})"
            raise LFConfigError(f"LF names must be unique; duplicated: {lf.name!r}{where}; rename one of them")
        if lf.label_space is None:
            try:  # its class names resolve now: a name not in the label space is said with where the LF is
                lf.label_space = self._label_space
            except LFConfigError as err:
                raise LFConfigError(f"{origin}: {err}" if origin and origin not in str(err) else str(err)) from None
        elif tuple(lf.label_space) != self._label_space:
            raise LFConfigError(
                f"LF {lf.name!r} has label space {list(lf.label_space)} but the registry uses "
                f"{list(self._label_space)}; drop the LF's label_space= or make them equal"
            )
        lf.version  # noqa: B018 - computed now, on the driver, and cached before LFs ship to executors
        self._lfs[lf.name] = lf
        if origin:
            self._origin[lf.name] = origin
        return lf

    def origin(self, name: str) -> str:
        """Where LF ``name`` came from: its file, column or model, else the module or config entry."""
        lf = self[name]
        if lf.origin:
            return lf.origin
        where = self._origin.get(name)
        if where is None:
            return ""
        return where if " " in where else f"module {where}"

    @property
    def label_space(self) -> tuple[str, ...]:
        return self._label_space

    @property
    def cardinality(self) -> int:
        return len(self._label_space)

    @property
    def lfs(self) -> tuple[LabelingFunction, ...]:
        """The LFs sorted by name (the column order of every label matrix)."""
        return tuple(self._lfs[name] for name in sorted(self._lfs))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._lfs))

    @property
    def versions(self) -> dict[str, str]:
        """LF name -> version, sorted by name."""
        return {lf.name: lf.version for lf in self.lfs}

    @property
    def earlier_versions(self) -> dict[str, tuple[str, ...]]:
        """LF name -> the versions an older lakelabel gave it unedited (see ``LabelingFunction.earlier_versions``)."""
        return {lf.name: lf.earlier_versions for lf in self.lfs if lf.earlier_versions}

    @property
    def fingerprint(self) -> str:
        """sha256 hex of the label space and the sorted ``name:version`` pairs."""
        doc = {"label_space": list(self._label_space), "lfs": [f"{n}:{v}" for n, v in self.versions.items()]}
        return hashlib.sha256(_dumps(doc).encode("utf-8")).hexdigest()

    def select(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, *,
               config_key: str | None = None) -> LFRegistry:
        """A new registry with the LFs named in ``include`` (all when None) minus those in ``exclude``.

        ``config_key``: where the names come from (``"lfs"``: the error says ``lfs.exclude: ...``).

        Raises
        ------
        LFConfigError
            A name in ``include`` or ``exclude`` is not registered; the error says which list holds it.
        """
        include = _names(include, "include")
        exclude = _names(exclude, "exclude")
        key = f"{config_key}." if config_key else ""
        error = unknown_names_error({f"{key}include": include, f"{key}exclude": exclude}, self.names)
        if error:
            raise LFConfigError(error)
        keep = set(include) if include is not None else set(self._lfs)
        keep -= set(exclude or [])
        out = self._empty()
        for name in sorted(keep):
            out.register(self._lfs[name], origin=self._origin.get(name))
        return out

    def _empty(self) -> LFRegistry:
        """A registry of the same kind and label space, without LFs (what :meth:`select` fills)."""
        return LFRegistry(self._label_space)

    def __len__(self) -> int:
        return len(self._lfs)

    def __iter__(self) -> Iterator[LabelingFunction]:
        return iter(self.lfs)

    def __contains__(self, name: object) -> bool:
        return name in self._lfs

    def __getitem__(self, name: str) -> LabelingFunction:
        try:
            return self._lfs[name]
        except KeyError:
            raise KeyError(f"no LF named {name!r}; known LFs: {list(self.names)}") from None

    def __repr__(self) -> str:
        return f"LFRegistry(label_space={list(self._label_space)}, lfs={list(self.names)})"


def _names(names: Iterable[str] | None, what: str) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise LFConfigError(f"{what} must be a list of LF names, got the string {names!r}; write [{names!r}]")
    return list(names)


def _import(module: str) -> ModuleType:
    if not isinstance(module, str) or not module:
        raise LFConfigError(f"LF modules are given as dotted names such as 'lf_library.lfs.demo', got {module!r}")
    try:
        return import_fresh(module)  # as on disk now, in a notebook too
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if module == missing or module.startswith(missing + "."):
            raise LFConfigError(
                f"LF module {module!r} cannot be imported: {err}; check the dotted name and that its package "
                f"is importable: run from the folder that holds it, put that folder on PYTHONPATH, or pip install it (spark-submit: --py-files)"
            ) from err
        raise LFConfigError(
            f"LF module {module!r} failed to import because it needs {missing!r}, which is not installed; "
            f"install it on the driver and the executors"
        ) from err
    except Exception as err:
        raise LFConfigError(f"LF module {module!r} raised on import: {type(err).__name__}: {err}") from err


def _module_lfs(mod: ModuleType) -> list[LabelingFunction]:
    found: dict[int, LabelingFunction] = {}
    for value in vars(mod).values():
        if isinstance(value, LabelingFunction):
            found.setdefault(id(value), value)
    listed = getattr(mod, "LFS", None)
    if listed is not None:
        if isinstance(listed, (str, bytes)) or not isinstance(listed, Iterable):
            raise LFConfigError(
                f"{mod.__name__}.LFS must be a list of LabelingFunction objects, got {type(listed).__name__}"
            )
        for i, value in enumerate(listed):
            if not isinstance(value, LabelingFunction):
                raise LFConfigError(
                    f"{mod.__name__}.LFS[{i}] is a {type(value).__name__}, not a LabelingFunction; build it "
                    f"with @labeling_function or a builder such as keyword_lf"
                )
            found.setdefault(id(value), value)
    return list(found.values())


def module_lfs(module: str) -> tuple[list[LabelingFunction], tuple[str, ...] | None]:
    """Import ``module`` and return its LFs (sorted by name) and its ``LABEL_SPACE`` (None if it has none).

    For configs that route LFs by label space (several tasks): an LF with its own label space
    keeps it; the caller gives the module's ``LABEL_SPACE`` to the others.

    Raises
    ------
    LFConfigError
        The module cannot be imported or defines no LF.
    """
    mod = _import(module)
    lfs = _module_lfs(mod)
    if not lfs:
        raise LFConfigError(
            f"module {module!r} defines no LabelingFunction; decorate functions with @labeling_function, "
            f"use a builder (keyword_lf, regex_lf, ...) or list them in LFS"
        )
    space = getattr(mod, "LABEL_SPACE", None)
    space = check_label_space(space, owner=f"{module}.LABEL_SPACE") if space is not None else None
    return sorted(lfs, key=lambda lf: lf.name), space


def load_registry(
    modules: Sequence[str],
    *,
    label_space: Sequence[str] | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> LFRegistry:
    """Import LF modules and register every LF they define.

    An LF is any module attribute that is a :class:`LabelingFunction`, plus the items of a
    module-level ``LFS`` list. The label space is ``label_space`` or the ``LABEL_SPACE`` constant
    of the modules; every module that defines one must agree with it.

    Raises
    ------
    LFConfigError
        A module cannot be imported or defines no LF, label spaces disagree or none is given,
        LF names collide, or ``include`` / ``exclude`` name unknown LFs.
    """
    if isinstance(modules, str):
        modules = [modules]
    if not modules:
        raise LFConfigError("no LF modules given; list the modules that define your LFs, e.g. ['lf_library.lfs.demo']")
    loaded = [(name, _import(name)) for name in modules]

    declared = {name: getattr(mod, "LABEL_SPACE") for name, mod in loaded if hasattr(mod, "LABEL_SPACE")}
    spaces = {name: check_label_space(space, owner=f"{name}.LABEL_SPACE") for name, space in declared.items()}
    if label_space is not None:
        space = check_label_space(label_space)
        clash = {n: list(s) for n, s in spaces.items() if s != space}
        if clash:
            raise LFConfigError(
                f"label_space {list(space)} disagrees with the LABEL_SPACE of {clash}; make them equal "
                f"(class ids of the module's LFs follow its LABEL_SPACE)"
            )
    elif spaces:
        distinct = {s for s in spaces.values()}
        if len(distinct) > 1:
            raise LFConfigError(
                f"LF modules disagree on LABEL_SPACE: {({n: list(s) for n, s in spaces.items()})}; load them "
                f"separately or make them equal"
            )
        space = next(iter(distinct))
    else:
        raise LFConfigError(
            f"no label space for modules {list(modules)}: pass label_space=[...] or define LABEL_SPACE "
            f"in the module"
        )

    registry = LFRegistry(space)
    seen: set[int] = set()
    for name, mod in loaded:
        lfs = _module_lfs(mod)
        if not lfs:
            raise LFConfigError(
                f"module {name!r} defines no LabelingFunction; decorate functions with @labeling_function, "
                f"use a builder (keyword_lf, regex_lf, ...) or list them in LFS"
            )
        for lf in sorted(lfs, key=lambda x: x.name):
            if id(lf) in seen:  # the same object imported into several modules
                continue
            seen.add(id(lf))
            registry.register(lf, origin=name)
    if include is None and exclude is None:
        return registry
    return registry.select(include=include, exclude=exclude)
