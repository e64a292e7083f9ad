"""Run ids and the per-run folder that lets stages run as separate jobs.

``<lakehouse>/_lakelabel/runs/<run_id>/`` holds what one stage hands the next when they run as
separate spark-submits: ``stats.npz`` and ``gold_counts.npy`` (aggregate), ``label_model.json``
and ``fit.json`` (fit). The pipeline passes the same objects in memory and writes them too.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.runtime import processes
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

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


# A pipeline run that failed or was interrupted after it wrote statistics or a model (a drift gate that
# stopped it, a failed write, Ctrl-C) leaves them in its folder for inspection, with this file beside
# them: stage jobs that take "the latest run" pass over it, so `lakelabel write` alone cannot publish
# labels from a model the pipeline refused. Fitting the run again (`lakelabel fit --run-id`, or the run
# again) removes it.
FAILED_FILE = "failed.json"
# While it hands files on, a pipeline run holds this file (its process, jobs.runtime.processes): a run killed
# without a chance to mark itself failed (SIGKILL: a timeout's kill -9, the out-of-memory killer) leaves it, and
# the stage jobs pass over that run as over a failed one (its model never passed the drift gate). A run still
# running is passed over too: its model is not published yet.
RUNNING_FILE = "running.json"


def latest_run_with(lakehouse: str | Path, filename: str) -> str | None:
    """The run id whose ``filename`` was written last, passing over runs that failed after writing it
    (:data:`FAILED_FILE`), were killed or still run (:data:`RUNNING_FILE`). The file's time, not the folder's:
    a folder's time moves when anything in it changes (a full apply deletes an older run's row masks from its
    folder)."""
    root = Path(lakehouse).resolve() / "_lakelabel" / "runs"
    if not root.is_dir():
        return None
    runs = sorted((p for p in root.iterdir() if (p / filename).exists()),
                  key=lambda p: (p / filename).stat().st_mtime)
    passed = []
    while runs and ((runs[-1] / FAILED_FILE).exists() or (runs[-1] / RUNNING_FILE).exists()):
        run_id = runs.pop().name
        passed.append(f"{run_id} ({(failed_run(lakehouse, run_id) or {}).get('ended', 'failed')})")
    if passed:
        log.info("passing over run(s) %s after writing %s (see %s or %s in the run folder)", ", ".join(passed),
                 filename, FAILED_FILE, RUNNING_FILE)
    return runs[-1].name if runs else None


def mark_running(lakehouse: str | Path, run_id: str) -> None:
    """Mark ``run_id``'s folder as in the hands of this process: called by a run before it saves statistics
    there; :func:`mark_failed` or :func:`mark_done` replaces the mark."""
    write_json(run_dir(lakehouse, run_id) / RUNNING_FILE,
               {"run_id": run_id, "process": processes.identity(),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def mark_done(lakehouse: str | Path, run_id: str) -> None:
    """``run_id`` succeeded: its files are its own (the mark of :func:`mark_running` goes)."""
    (run_dir(lakehouse, run_id, create=False) / RUNNING_FILE).unlink(missing_ok=True)


def mark_failed(lakehouse: str | Path, run_id: str, interrupted: bool, reason: str) -> None:
    """Mark ``run_id``'s folder failed: called by a run that failed after it wrote its statistics (and
    maybe its model) there."""
    folder = run_dir(lakehouse, run_id, create=False)
    try:
        write_json(folder / FAILED_FILE, {"run_id": run_id, "status": "interrupted" if interrupted else "failed",
                                          "reason": reason.strip().splitlines()[0][:500] if reason.strip() else "",
                                          "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        mark_done(lakehouse, run_id)
    except OSError as err:  # the run's own error matters more than its marker
        log.warning("could not mark run %s failed in %s: %s", run_id, folder, err)


def failed_run(lakehouse: str | Path, run_id: str) -> dict[str, str] | None:
    """``status`` (failed, interrupted, killed, running, unfinished: another machine's), ``ended`` (the status as
    a verb: "failed", "was interrupted", "was killed", "is still running", "did not finish") and ``reason`` of a
    run that failed after writing its statistics or model (:func:`mark_failed`), was killed then or still runs
    (:func:`mark_running`), or None."""
    folder = run_dir(lakehouse, run_id, create=False)
    path = folder / FAILED_FILE if (folder / FAILED_FILE).is_file() else folder / RUNNING_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    if path.name == RUNNING_FILE:
        process = str(doc.get("process") or "")
        since = f"began {doc.get('at')} in process {process or 'unknown'}"
        if processes.gone(process):
            return {"status": "killed", "ended": "was killed",
                    "reason": f"it ended without marking itself done or failed (SIGKILL, out of memory); {since}"}
        if processes.alive(process):
            return {"status": "running", "ended": "is still running", "reason": since}
        return {"status": "unfinished", "ended": "did not finish",
                "reason": f"still running or killed on another machine; {since}"}
    status = str(doc.get("status") or "failed")
    return {"status": status, "ended": "was interrupted" if status == "interrupted" else "failed",
            "reason": str(doc.get("reason") or "no reason recorded")}


def clear_failed(lakehouse: str | Path, run_id: str) -> None:
    """A new fit of ``run_id`` replaces the failed attempt's model: the run is a candidate again (a killed
    attempt's mark goes when a fit job, not a run, fits it again: :func:`mark_done`)."""
    (run_dir(lakehouse, run_id, create=False) / FAILED_FILE).unlink(missing_ok=True)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON in one step (a temporary file renamed over ``path``; none is left on failure)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def probe_write(folder: Path) -> None:
    """Write a byte to a file in ``folder`` and remove it; OSError when that fails. ``os.access`` says yes to
    root whatever the mode bits, a read-only mount or a pseudo file system (/sys); a full disk lets a file be
    created but not written."""
    fd, probe = tempfile.mkstemp(prefix=".lakelabel-write-check-", dir=folder)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
        os.unlink(probe)


def full(err: OSError) -> bool:
    """Whether ``err`` says the disk (or the user's quota) is full, not that the folder is closed to the user."""
    return err.errno in (errno.ENOSPC, errno.EDQUOT)


def check_lakehouse(lakehouse: str | Path, tables: dict[str, str] | None = None,
                    writes: Sequence[Path] = ()) -> Path:
    """Make sure the lakehouse is a folder lakelabel can write (create it when absent); return it.

    Refuses, with one line naming the path and the fix: a lakehouse that is a file or lies under
    a file, a folder that cannot be written (permissions, a read-only mount, ``chattr +i``; the
    check writes a probe file, because ``os.access`` says yes to root whatever the mode bits), local
    table paths (``tables``: name -> absolute path) that are files, paths Spark cannot read
    (:func:`jobs.delta_io.files.spark_glob_error`), and those of ``writes`` (folders and files in the lakehouse
    the command writes) that exist and cannot be written.
    """
    from jobs.delta_io.files import spark_glob_error

    path = Path(lakehouse).resolve()
    for what, where in (("lakehouse", str(path)), *((f"tables.{name}", table) for name, table in (tables or {}).items())):
        if (error := spark_glob_error(where, what, what)) is not None:
            raise ConfigError(error)
    blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file, not a folder" if blocker == path else f"lies under {blocker}, which is a file"
        raise ConfigError(f"lakehouse {path} {what}; set lakehouse to a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe_write(path)
    except OSError as err:
        fix = ("free space there or set lakehouse to a folder with room" if full(err) else
               "make it writable for this user or set lakehouse to a writable folder")
        raise ConfigError(f"lakehouse {path} cannot be written ({err.strerror or err}); {fix}") from None
    for name, table in (tables or {}).items():
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", table) and os.path.isfile(table):
            raise ConfigError(f"tables.{name} {table} is a file, not a Delta table folder; remove it or point "
                              f"tables.{name} elsewhere")
    for inside in writes:
        try:
            if inside.is_dir():
                probe_write(inside)
            elif inside.is_file() and not os.access(inside, os.W_OK):  # not opened: closing a descriptor of an
                raise PermissionError(13, "Permission denied")  # MLflow store would drop this process's SQLite locks
        except OSError as err:
            fix = ("free space there" if full(err) else
                   f"make it (and what is in it) writable for this user, as the rest of the lakehouse {path} is")
            raise ConfigError(f"{inside} cannot be written ({err.strerror or err}), and this command writes there; "
                              f"{fix}") from None
    return path
