"""One task's LFs that cannot be built, kept to that task (README "Several tasks at once").

Teams often own one task each of a multi-task config. A task whose own LFs fail to build (its LF module
does not import, has a syntax error or an LF that raises while the module runs, a label space that
disagrees with the task's, a declared LF with a bad key, no LF at all) is a :class:`BrokenTask`:
:func:`jobs.tasks.build_task_set` builds the other tasks, so a command that reads only those (``--task
NAME``) runs, and a command that needs the broken task (``run``, ``apply``, ``analyze`` and ``report``
without ``--task``, or ``--task`` naming it) fails before Spark starts with :func:`broken_error`: one
line naming the task, the module and file (and line) and the fix. ``run`` never labels the other tasks
silently without it: exit 0 means every task's labels were written.

An LF module of the top-level ``lfs.modules`` is routed to its task by the label space of its LFs, which
a module that does not import cannot tell, unless its file assigns ``LABEL_SPACE`` a literal and gives no LF
a label space of its own (:func:`literal_label_space`): then it stops the task with that label space, else
every task (:func:`shared_module_error`).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from lf_library.errors import LFConfigError

__all__ = ["BrokenTask", "describe", "failed_at", "broken_error", "shared_module_error", "literal_label_space"]


@dataclass(frozen=True)
class BrokenTask:
    """A task whose LFs could not be built: why, and the config key that lists them."""

    name: str
    reason: str  # the error, with the file and line of the module where known
    key: str  # where its LFs are listed: tasks.<name>.lfs, multi_label.lfs
    # The --set items that run the config without it: tasks.<name>=null (and 'lfs.modules=[...]' without a failed
    # top-level module), multi_label=null.
    drop: tuple[str, ...]


def describe(err: BaseException, modules: Sequence[str]) -> str:
    """``err``'s message and, where known, the file and line of the module it comes from."""
    where = failed_at(err, modules)
    return f"{err} [{where}]" if where and where not in str(err) else str(err)


def failed_at(err: BaseException, modules: Sequence[str]) -> str | None:
    """``"path, line N"`` in the LF module whose import raised ``err`` (an :class:`LFConfigError` chained from
    the import's exception), the file alone when the line is not known, None when no module file is found."""
    files: dict[str, str] = {}
    for module in modules:
        if (spec := _spec(module)) is None:  # a missing parent package: nothing to point at
            continue
        if spec.origin and spec.origin.endswith(".py"):
            files[spec.origin] = module
    cause = err.__cause__
    if isinstance(cause, SyntaxError) and cause.filename:
        return f"{cause.filename}, line {cause.lineno}"
    if cause is not None:
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if f.filename in files]
        if frames:  # the module's own line, not the library code it called
            return f"{frames[-1].filename}, line {frames[-1].lineno}"
    named = [path for path, module in files.items() if repr(module) in str(err)]
    return named[0] if len(named) == 1 else None


_FIX = re.compile(r": fix the name or remove it from ")  # lf_library.registry.unknown_names_error's own fix


def broken_error(broken: Sequence[BrokenTask], healthy: Sequence[str]) -> LFConfigError:
    """The one error of a command that needs the tasks ``broken``; ``healthy``: the tasks that can run."""
    groups: dict[tuple[str, str], list[str]] = {}  # tasks with one reason (the tags of multi_label) said once
    for b in broken:
        groups.setdefault((b.key, b.reason), []).append(b.name)
    what = "; ".join(reason if reason.startswith(f"task {names[0]!r}") else
                     f"task{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}"
                     f"{'' if key in reason else f' ({key})'}: {reason}"  # the key once
                     for (key, reason), names in groups.items())  # fmt: skip
    names = [b.name for b in broken]
    # A reason that says its own fix ("fix the name or remove it from ...") is not told "fix it" again.
    told = all(_FIX.search(b.reason) for b in broken)
    fix = ("then rerun" if told else f"fix {'it' if len(broken) == 1 else 'them'} and rerun") + \
        "; nothing was read or written"
    if healthy:
        drop = " ".join(dict.fromkeys(f"--set {item}" for b in broken for item in b.drop))
        they = ", ".join(names)
        fix += (f". Meanwhile the commands with --task NAME on the other tasks ({', '.join(healthy)}) work, and {drop} "
                f"runs the pipeline without {they} (that run drops the votes and the labels column of {they}; a "
                f"later run with {'it' if len(names) == 1 else 'them'} puts them back)")
    return LFConfigError(f"{what}; {fix}")


def shared_module_error(err: LFConfigError, module: str, key: str) -> LFConfigError:
    """A module of the top-level ``lfs.modules`` that fails: its LFs' tasks cannot be told, so every task waits."""
    return LFConfigError(
        f"{describe(err, [module])} ({key}, routed to the tasks by their label space, which this module cannot tell "
        f"while it fails: every task needs it); fix it, or list it under tasks.<name>.lfs.modules so that it stops "
        f"only its task"
    )


_ASSIGNED = re.compile(r"^LABEL_SPACE\s*(?::[^=]+)?=\s*(?P<value>.+?)\s*(?:#.*)?$", re.M)
_CHANGED = re.compile(r"^\s*LABEL_SPACE\s*[-+|&*]=", re.M)  # LABEL_SPACE += (...): not the literal alone


def literal_label_space(module: str) -> tuple[str, ...] | None:
    """The ``LABEL_SPACE`` that ``module``'s file assigns as a literal (``("routine", "urgent")``), read without
    importing it (a syntax error elsewhere in the file still reads a one-line assignment); None when it cannot
    be told: no source, no literal, more than one assignment or one that changes it (``+=``), a star import, or
    ``label_space`` written in the file (an LF with a label space of its own may belong to another task)."""
    spec = _spec(module)
    try:  # the loader reads a module in a --py-files zip too
        text = spec.loader.get_source(module) if spec is not None and spec.loader is not None else None
    except (ImportError, OSError, UnicodeDecodeError):
        return None
    if not isinstance(text, str):
        return None
    if "label_space" in text or "import *" in text or _CHANGED.search(text):
        return None
    try:
        values = [node.value for node in ast.parse(text).body
                  if (isinstance(node, ast.Assign) and any(_is_label_space(t) for t in node.targets))
                  or (isinstance(node, ast.AnnAssign) and node.value is not None and _is_label_space(node.target))]
    except SyntaxError:
        values = [m["value"] for m in _ASSIGNED.finditer(text)]
    if len(values) != 1:
        return None
    try:
        space = ast.literal_eval(values[0])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(space, (list, tuple)) and space and all(isinstance(c, str) for c in space):
        return tuple(space)
    return None


def _is_label_space(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and target.id == "LABEL_SPACE"


def _spec(module: str) -> importlib.machinery.ModuleSpec | None:
    """``module``'s spec, None when it cannot be found: finding it imports its parent packages, whose
    ``__init__`` may raise anything (a raw traceback otherwise, even with --task on another task)."""
    try:
        return importlib.util.find_spec(module)
    except Exception:  # noqa: BLE001 - any error of a parent package's import means: not found
        return None
