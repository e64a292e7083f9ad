"""Import LF and slice modules as they are on disk now, in a long-lived Python process: :func:`import_fresh`.

``importlib.import_module`` returns the module a process imported earlier. A notebook that ran the pipeline,
then had an LF module edited on disk (a keyword added) and ran the pipeline again, got the LFs of the first
import with their first versions: "votes up to date ... reusing votes", the edit silently left out, where
``lakelabel run`` (a new process) applies it (a drill, session 39). So the modules the jobs import by name are
reloaded when their file changed since this module last imported (or saw) them, together with the changed
modules of the same top-level package (``my_lfs.util`` beside ``my_lfs.tickets``), helpers first. lakelabel's
own packages are not reloaded, except an LF module named in a config (``lf_library.lfs.demo``) itself.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from types import ModuleType

__all__ = ["import_fresh"]

log = logging.getLogger(__name__)

_OWN = ("lf_library", "jobs", "labelmodel")  # reloading these would split lakelabel's classes in two
_STAMPS: dict[str, tuple[int, int] | None] = {}  # module name -> (mtime_ns, size) of its file when last seen
_LOADED: dict[str, int] = {}  # module name -> generation of its package when import_fresh last (re)loaded it
_GENERATION: dict[str, int] = {}  # top-level package -> bumped whenever one of its modules is reloaded
# When lakelabel was imported: an LF module imports lf_library, so a module a notebook imported itself came after.
_STARTED_NS = time.time_ns()


def _stamp(module: ModuleType) -> tuple[int, int] | None:
    path = getattr(module, "__file__", None)
    try:
        stat = os.stat(path) if path else None
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size) if stat is not None else None


def _package_modules(name: str) -> list[str]:
    """``name`` and the imported modules of its top-level package (only ``name`` for lakelabel's own)."""
    root = name.split(".")[0]
    if root in _OWN:
        return [name] if name in sys.modules else []
    return sorted(m for m in list(sys.modules) if m == root or m.startswith(root + "."))


def import_fresh(name: str) -> ModuleType:
    """``importlib.import_module(name)``, first reloading what changed on disk since it was last imported here.

    Raises whatever the import (or the reload) raises; callers name the module in their error.
    """
    root = name.split(".")[0]
    if name in sys.modules and name not in _STAMPS and root not in _OWN:
        # Imported by the notebook itself, before any job loaded it: whether its file changed since is not known,
        # but a file written after lakelabel's import may have (an LF cell run, then the module edited): reload
        # those, once. An unedited module reloads to the same LFs.
        newer = [m for m in _package_modules(name) if m not in _STAMPS and sys.modules.get(m) is not None
                 and (_stamp(sys.modules[m]) or (0, 0))[0] > _STARTED_NS]
        for module in [m for m in newer if m != name] + ([name] if newer else []):  # it may import a helper's values
            importlib.reload(sys.modules[module])
        if newer:
            log.info("module %s was imported before a job loaded it and its file(s) were written since lakelabel "
                     "was imported: reloaded %s", name, ", ".join(newer))
    elif name in sys.modules:
        changed = [m for m in _package_modules(name) if m in _STAMPS and sys.modules.get(m) is not None
                   and _stamp(sys.modules[m]) not in (_STAMPS[m], None)]  # a file gone: keep what was imported
        if changed:
            for module in [m for m in changed if m != name] + [name]:  # helpers before the module that uses them
                importlib.reload(sys.modules[module])
                _STAMPS[module] = _stamp(sys.modules[module])
            _GENERATION[root] = _GENERATION.get(root, 0) + 1
            log.warning("module %s changed on disk since this Python process imported it: reloaded %s", name,
                        ", ".join(dict.fromkeys([*changed, name])))
        elif _LOADED.get(name, 0) < _GENERATION.get(root, 0):  # a helper it may import was reloaded for another
            importlib.reload(sys.modules[name])
            log.info("module %s reloaded: modules of its package changed on disk", name)
    module = importlib.import_module(name)
    for m in _package_modules(name):
        if m not in _STAMPS and sys.modules.get(m) is not None:
            _STAMPS[m] = _stamp(sys.modules[m])
    _STAMPS[name] = _stamp(module)
    _LOADED[name] = _GENERATION.get(root, 0)
    return module
