"""Run ids and the per-run folder that lets stages run as separate jobs.

``<lakehouse>/_lakelabel/runs/<run_id>/`` holds what one stage hands the next when they run as
separate spark-submits: ``stats.npz`` and ``gold_counts.npy`` (aggregate), ``label_model.json``
and ``fit.json`` (fit). The pipeline passes the same objects in memory and writes them too.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from lf_library.errors import ConfigError

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261124T101500Z-3f9a1c``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ConfigError(
            f"run id {run_id!r} is not valid: use letters, digits, '.', '_' or '-' (at most 128, "
            f"starting with a letter or digit), e.g. an orchestrator's run id"
        )
    return run_id


def run_dir(lakehouse: str | Path, run_id: str, *, create: bool = True) -> Path:
    path = Path(lakehouse).resolve() / "_lakelabel" / "runs" / run_id
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def task_file(filename: str, task: str | None) -> str:
    """``analysis.json`` -> ``analysis_<task>.json``: a task's file in the run folder (unchanged without a task)."""
    if task is None:
        return filename
    stem, dot, ext = filename.rpartition(".")
    return f"{stem}_{task}.{ext}" if dot else f"{filename}_{task}"


def latest_run_with(lakehouse: str | Path, filename: str) -> str | None:
    """The newest run id (by folder name) whose folder holds ``filename``."""
    root = Path(lakehouse).resolve() / "_lakelabel" / "runs"
    if not root.is_dir():
        return None
    runs = sorted((p for p in root.iterdir() if (p / filename).exists()), key=lambda p: p.stat().st_mtime)
    return runs[-1].name if runs else None


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def check_lakehouse(lakehouse: str | Path, tables: dict[str, str] | None = None) -> Path:
    """Make sure the lakehouse is a folder lakelabel can write (create it when absent); return it.

    Refuses, with one line naming the path and the fix: a lakehouse that is a file or lies under
    a file, a folder that cannot be written (permissions, a read-only mount, ``chattr +i``; the
    check writes a probe file, because ``os.access`` says yes to root whatever the mode bits), and
    local table paths (``tables``: name -> absolute path) that are files.
    """
    path = Path(lakehouse).resolve()
    blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file, not a folder" if blocker == path else f"lies under {blocker}, which is a file"
        raise ConfigError(f"lakehouse {path} {what}; set lakehouse to a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".lakelabel-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(
            f"lakehouse {path} cannot be written ({err.strerror or err}); make it writable for this user or "
            f"set lakehouse to a writable folder"
        ) from None
    for name, table in (tables or {}).items():
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", table) and os.path.isfile(table):
            raise ConfigError(f"tables.{name} {table} is a file, not a Delta table folder; remove it or point "
                              f"tables.{name} elsewhere")
    return path
