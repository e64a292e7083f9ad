"""Parquet files that a killed lakelabel write left in a table folder, and how to tell them apart.

The local writer (:meth:`jobs.delta_io.local.LocalDeltaIO.write_table`) has its Spark tasks write
Parquet files straight into the table folder, then commits them. A write that fails deletes its
files; a write whose driver, worker or task is killed cannot, and its files stay in the folder,
unreferenced by the Delta log (invisible to readers, but they take space and confuse people).

Each write holds a *writer lock* while it runs: ``<table>/_lakelabel_writers/<write id>.lock``,
locked with ``flock`` by the driver process. The kernel releases it when the process dies, however
it dies. At the start of the next write to the table, :func:`sweep` deletes a file only when all
of these hold (conservative: another writer's files are never touched):

- its name is lakelabel's: ``part-NNNNN-<32 hex write id>-<8 hex>-NNNN.c000.<codec>.parquet``;
- no commit in the table's history carries that write id, and the current snapshot does not
  reference the file;
- its write's lock file exists and nobody holds the lock (the writer is dead). A write with no
  lock file (a lakelabel that predates the lock) counts as dead only when the file is older than
  :data:`UNLOCKED_GRACE_SECONDS`.

Files of a committed write that its commit does not reference (a task attempt killed before a
retry succeeded) are deleted by the writer itself right after its commit (:func:`delete_strays`).
The lock needs a local or mounted filesystem with ``flock`` (NFSv4 has it); on object stores
(``s3://``...) nothing is locked or swept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("jobs.delta_io")

LOCK_DIR = "_lakelabel_writers"
UNLOCKED_GRACE_SECONDS = 24 * 3600
_DATA_FILE = re.compile(r"^part-\d{5}-(?P<write_id>[0-9a-f]{32})-[0-9a-f]{8}-\d{4}\.c000\.(snappy|zstd)\.parquet$")

try:
    import fcntl
except ImportError:  # Windows: no flock, no sweeping
    fcntl = None  # type: ignore[assignment]


def local_root(root: str) -> bool:
    """Whether ``root`` (a normalized table path) is a local folder whose leftovers can be swept."""
    return fcntl is not None and root.startswith("/")


class WriterLock:
    """Held by a writer from before its tasks start until after its commit (a context manager)."""

    def __init__(self, root: str, write_id: str) -> None:
        self.path = Path(root) / LOCK_DIR / f"{write_id}.lock"
        self.fd: int | None = None
        self.kept = False

    def keep(self) -> None:
        """Leave the lock file (unlocked) when the write fails: a task it could not stop may still finish a file,
        which the next write's sweep then deletes."""
        self.kept = True

    def __enter__(self) -> WriterLock:
        if not local_root(str(self.path)):
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Lock a temporary name, then rename: a sweeper never sees the final name unlocked.
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()} {os.uname().nodename}\n".encode())
        os.replace(tmp, self.path)
        self.fd = fd
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self.fd is None:
            return
        try:
            if exc_type is not None and (self.kept or _has_files_of(self.path.parent.parent, self.path.stem)):
                # A failed write whose task still left a file (it finished it after the write deleted its files):
                # the lock file stays, unlocked once closed below, so the next write's sweep deletes that file.
                return
            self.path.unlink(missing_ok=True)
            if self.path.parent.is_dir() and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None


def _has_files_of(root: Path, write_id: str) -> bool:
    """Whether a data file of ``write_id`` is under the table folder ``root``."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "_delta_log" and d != LOCK_DIR]
        if any((m := _DATA_FILE.match(name)) and m["write_id"] == write_id for name in files):
            return True
    return False


def writer_dead(lock: Path) -> bool:
    """True when the lock file ``lock`` exists and no process holds it (its writer is gone). The lock taken must
    be the file's still there: a writer that ended (its lock file removed, then the lock dropped) between this
    open and this lock is not dead (a review: its folder was swept)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = os.fstat(fd)
        return held.st_nlink > 0 and held.st_ino == os.stat(lock).st_ino
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the probe's lock


def sweep(root: str, committed_write_ids: Iterable[str], referenced: Iterable[str]) -> list[str]:
    """Delete the files that dead lakelabel writes left under ``root``; return their paths.

    Parameters
    ----------
    root : str
        The table folder (a local path; URIs are left alone).
    committed_write_ids : iterable of str
        Write ids found in the table's commit history: their files are never deleted here.
    referenced : iterable of str
        Absolute paths of the files the current snapshot references.
    """
    if not local_root(root) or not os.path.isdir(root):
        return []
    committed, keep = set(committed_write_ids), {os.path.abspath(p) for p in referenced}
    locks = Path(root) / LOCK_DIR
    now, dead_cache, deleted = time.time(), {}, []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "_delta_log" and d != LOCK_DIR]
        for name in files:
            match = _DATA_FILE.match(name)
            path = os.path.join(folder, name)
            if not match or match["write_id"] in committed or path in keep:
                continue
            write_id = match["write_id"]
            lock = locks / f"{write_id}.lock"
            if write_id not in dead_cache:
                dead_cache[write_id] = writer_dead(lock) if lock.exists() else None
            dead = dead_cache[write_id]
            if dead is None:  # no lock file: only long-abandoned files
                try:
                    dead = now - os.stat(path).st_mtime > UNLOCKED_GRACE_SECONDS
                except FileNotFoundError:
                    continue
            if dead:
                try:
                    os.unlink(path)
                    deleted.append(path)
                except FileNotFoundError:
                    pass
    for write_id, dead in dead_cache.items():
        if dead:
            (locks / f"{write_id}.lock").unlink(missing_ok=True)
    if locks.is_dir():  # lock files of dead writers that left no data file
        for lock in locks.glob("*.lock"):
            if lock.stem not in dead_cache and writer_dead(lock):
                lock.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # empty now: as a writer leaves it (WriterLock)
            locks.rmdir()
    if deleted:
        log.warning("deleted %d file(s) that a killed lakelabel write left in %s (never committed)", len(deleted), root)
    return deleted


def delete_strays(root: str, write_id: str, committed: Iterable[str]) -> list[str]:
    """After a commit: delete this write's files that the commit does not reference.

    A task attempt killed before Spark retried it leaves a partial file named with the write id.
    """
    if not local_root(root) or not os.path.isdir(root):
        return []
    keep = {os.path.normpath(os.path.join(root, rel)) for rel in committed}
    deleted = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "_delta_log" and d != LOCK_DIR]
        for name in files:
            match = _DATA_FILE.match(name)
            path = os.path.normpath(os.path.join(folder, name))
            if match and match["write_id"] == write_id and path not in keep:
                try:
                    os.unlink(path)
                    deleted.append(path)
                except FileNotFoundError:
                    pass
    if deleted:
        log.info("deleted %d file(s) of failed task attempts of this write in %s", len(deleted), root)
    return deleted
