"""Opening a Delta table with delta-rs, and telling a damaged Delta log from other failures.

:func:`open_table` is the one place lakelabel opens a table with delta-rs: lakelabel's own tables
(:class:`jobs.delta_io.local.LocalDeltaIO`) and a user's table read as gold labels (``lakelabel gold
import --format delta``). A log delta-rs cannot parse, and a latest commit file that is empty (zero
bytes: delta-rs opens it as a version without changes), are bad input naming the table
(:func:`jobs.delta_io.errors.unreadable_delta_log`, exit 2); other failures (permissions, credentials,
a store that is down) stay as they are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from jobs.delta_io.errors import SourceReadError, _summary, unreadable_delta_log
from jobs.delta_io.files import _normalize, is_local_path

__all__ = ["open_table"]

# What delta-rs says of a log it cannot parse (probed on deltalake 1.6: a truncated or garbled commit file, a
# commit file missing between others, the first commits gone); other errors opening a table are not damage.
_DAMAGED_LOG = re.compile(r"Json error|contiguous commit files|No table metadata or protocol|checkpoint", re.I)


class EmptyCommitError(ValueError):
    """A commit file of zero bytes: no writer leaves one (commits are written whole, then renamed or put
    if absent), so the write that made it was cut off and the table is not as it was."""


def open_table(root: str, version: int | None = None, *,
               storage_options: Mapping[str, str] | None = None) -> Any:  # fmt: skip
    """The ``deltalake.DeltaTable`` at ``root`` (``version``: that version, else the latest).

    Raises
    ------
    SourceReadError
        ``version`` is not one of the table's (the message gives the latest).
    lf_library.errors.InputDataError
        The Delta log cannot be read, or the commit file of the version opened is empty (checked with one
        ``stat`` of a local table's file).
    """
    from deltalake import DeltaTable

    options = dict(storage_options) if storage_options else None
    try:
        table = DeltaTable(root, version=version, storage_options=options)
    except Exception as err:  # noqa: BLE001 - delta-rs raises DeltaError for a missing version and a bad log alike
        if version is not None:
            try:  # the latest version opens: the version asked for is the problem, not the log
                latest = DeltaTable(root, storage_options=options).version()
            except Exception:  # noqa: BLE001 - the log itself: said below
                pass
            else:
                raise SourceReadError(f"cannot load version {version} of Delta table {root} (its versions run "
                                      f"up to {latest}): {_summary(err)}") from err
        if not _DAMAGED_LOG.search(str(err)):  # permissions, credentials, a store that is down: as they are
            raise
        # Chained: a network fault of an object store under it stays transient (exit 3).
        raise unreadable_delta_log(root, err) from err
    _check_commit_not_empty(root, table.version())
    return table


def _check_commit_not_empty(root: str, version: int) -> None:
    """A local table's commit file of ``version`` has bytes (a zero-byte one opens as a version without changes)."""
    if not is_local_path(root):  # a stat on an object store is a request; its puts are whole anyway
        return
    commit = os.path.join(_normalize(root), "_delta_log", f"{version:020d}.json")
    try:
        empty = os.stat(commit).st_size == 0
    except OSError:  # no commit file: the version came from a checkpoint alone
        return
    if empty:
        err = EmptyCommitError(f"commit file {os.path.basename(commit)} is empty (0 bytes)")
        raise unreadable_delta_log(root, err) from err
