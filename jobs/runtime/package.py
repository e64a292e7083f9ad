"""lakelabel's own code as one zip for Spark executors (``spark-submit --py-files``, ``addPyFile``).

Spark puts ``.zip``, ``.egg`` and ``.jar`` files given to ``--py-files`` on the executors' Python
path; a ``.whl`` is copied but not imported from. So the packages ``jobs``, ``lf_library`` and
``labelmodel`` (with their data files) go into a plain zip, built from whatever this interpreter
imports them from: a wheel install, or the source tree of an editable install.
"""

from __future__ import annotations

import logging
import os
import zipfile
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGES = ("jobs", "lf_library", "labelmodel")
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
# Fixed timestamps make the zip's bytes depend only on the code.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def version() -> str:
    """The installed lakelabel version, or ``0+unknown`` when running from an uninstalled tree."""
    try:
        return metadata.version("lakelabel")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _package_dir(name: str) -> Path:
    import importlib

    module = importlib.import_module(name)
    return Path(module.__file__).resolve().parent


def _files() -> list[tuple[Path, str]]:
    out = []
    for name in PACKAGES:
        root = _package_dir(name)
        if not root.is_dir():
            from lf_library.errors import ConfigError

            raise ConfigError(
                f"{name} is imported from {root}, not a folder, so it cannot be packaged again; pass that "
                f"zip to spark-submit --py-files instead"
            )
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for filename in sorted(filenames):
                if filename.endswith(_SKIP_SUFFIXES):
                    continue
                path = Path(dirpath) / filename
                out.append((path, f"{name}/{path.relative_to(root).as_posix()}"))
    return out


def build_zip(out_dir: str | os.PathLike) -> Path:
    """Write ``lakelabel-<version>.zip`` with lakelabel's packages into ``out_dir`` and return its path.

    The zip holds the packages at its root, so ``import jobs`` works from it; its bytes depend only on
    the files, so rebuilding unchanged code gives an identical file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"lakelabel-{version()}.zip"
    tmp = target.with_suffix(".zip.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path, arcname in _files():
                info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())
        os.replace(tmp, target)
    except BaseException:  # a full disk, a signal: no half-written zip left beside the good ones
        tmp.unlink(missing_ok=True)
        raise
    log.info("packaged %s (%d KiB)", target, target.stat().st_size // 1024)
    return target
