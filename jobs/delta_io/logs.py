"""Opening a Delta table with delta-rs, and telling a damaged Delta log from other failures.

:func:`open_table` is the one place lakelabel opens a table with delta-rs: lakelabel's own tables
(:class:`jobs.delta_io.local.LocalDeltaIO`) and a user's table read as gold labels (``lakelabel gold
import --format delta``). A log delta-rs cannot parse, and a latest commit file that is empty (zero
bytes: delta-rs opens it as a version without changes), are bad input naming the table
(:func:`jobs.delta_io.errors.unreadable_delta_log`, exit 2); other failures (permissions, credentials,
a store that is down) stay as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from jobs.delta_io.errors import SourceReadError, _summary, unreadable_delta_log
from jobs.delta_io.files import _normalize, is_local_path

__all__ = ["check_path_opens", "open_table", "table_history"]

# What delta-rs says of a log it cannot parse (probed on deltalake 1.6: a truncated or garbled commit file, a
# commit file missing between others, the first commits gone); other errors opening a table are not damage.
_DAMAGED_LOG = re.compile(r"Json error|contiguous commit files|No table metadata or protocol|checkpoint", re.I)
# What delta-rs says of a reader feature it does not know (deltalake 1.6: a table a newer Delta engine wrote); it was
# exit 1 with "DeltaError: Kernel error: Unsupported: Feature 'x' is not supported" (a drill, session 26).
_UNSUPPORTED = re.compile(r"Feature '(?P<name>[^']+)' is not supported")
# A commit file (00000000000000000003.json) or a checkpoint file (single-part, multi-part or V2: each names
# the version it covers); temporary and CRC files, log compaction files and _last_checkpoint do not match.
_LOG_FILE = re.compile(r"(?P<version>\d{20})\.(?:json|(?P<checkpoint>checkpoint(?:\.[^/]+)?\.(?:parquet|json)))")

# A percent escape in a local path: delta-rs decodes it, in a file:// URI too (deltalake 1.6: a table in
# '/data/lake%201/votes' is looked for in '/data/lake 1/votes', and 'lake%25201' decodes twice).
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class EmptyCommitError(ValueError):
    """A commit file of zero bytes: no writer leaves one (commits are written whole, then renamed or put
    if absent), so the write that made it was cut off and the table is not as it was."""


def check_path_opens(root: str) -> None:
    """Refuse a local table folder whose path holds a percent escape (``%20``, ``%C3``), which delta-rs cannot open.

    It writes the first commit there and then looks for it in the decoded folder: the demo under ``/tmp/100%20``
    exited 1 with delta-rs's "Kernel error: File not found" after writing, and a later run took the table for
    absent. A ``%`` not followed by two hex digits opens.

    Raises
    ------
    SourceReadError
        ``root`` is local and holds such an escape.
    """
    # A file:// URI's own escapes decoded first: file:///data/a%20b is the folder 'a b', which opens.
    if is_local_path(root) and (escape := _PERCENT_ESCAPE.search(_normalize(root))) is not None:
        raise SourceReadError(
            f"Delta table {root}: its path holds {escape.group()!r}, which delta-rs (lakelabel's local Delta reader "
            f"and writer) decodes as a URL escape, so it cannot open a table there; rename the folder (a '%' not "
            f"followed by two hex digits is fine)"
        )


def open_table(root: str, version: int | None = None, *,
               storage_options: Mapping[str, str] | None = None) -> Any:  # fmt: skip
    """The ``deltalake.DeltaTable`` at ``root`` (``version``: that version, else the latest).

    Raises
    ------
    SourceReadError
        ``version`` is not one of the table's (the message gives the latest), or ``root`` is a path delta-rs
        cannot open (:func:`check_path_opens`).
    lf_library.errors.InputDataError
        The Delta log cannot be read, or a commit file delta-rs replays for the version opened (those after
        the latest checkpoint at or below it) is empty (checked in one listing of a local table's log).
    """
    from deltalake import DeltaTable

    check_path_opens(root)
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
        if (feature := _UNSUPPORTED.search(str(err))) is not None:
            import deltalake

            raise SourceReadError(
                f"Delta table {root} uses the table feature {feature['name']!r}, which deltalake {deltalake.__version__} "
                f"(lakelabel's local Delta reader) does not support ({_summary(err)}); run with the Delta Spark "
                f"extension (pip install 'lakelabel[delta]', or on Databricks), or with a deltalake release that reads it"
            ) from err
        if not _DAMAGED_LOG.search(str(err)):  # permissions, credentials, a store that is down: as they are
            raise
        # Chained: a network fault of an object store under it stays transient (exit 3).
        raise unreadable_delta_log(root, err) from err
    _check_commit_not_empty(root, table.version())
    return table


def table_history(table: Any, root: str, limit: int | None = None) -> list[dict[str, Any]]:
    """``table.history(limit)``, newest first, each entry a commit's ``commitInfo`` plus its ``version``.

    deltalake 1.6's ``history()`` is empty for a table under a folder whose name holds a ``#`` (it opens and reads;
    its log listing ends at the ``#``, a URL's fragment): lakelabel's commit metadata was gone, so a demo under such
    a lakehouse exited 2 calling its own labels table "not written by lakelabel". A local table's entries then come
    from its commit files, up to the first one a log cleanup removed.
    """
    entries = list(table.history(limit=limit))
    if entries or not is_local_path(root):
        return entries
    latest = table.version()
    oldest = 0 if limit is None else max(0, latest - limit + 1)
    log = os.path.join(_normalize(root), "_delta_log")
    for version in range(latest, oldest - 1, -1):
        try:
            with open(os.path.join(log, f"{version:020d}.json"), encoding="utf-8") as commit:
                lines = [line for line in commit if '"commitInfo"' in line[:32]]  # not every add action
        except FileNotFoundError:  # removed by a log cleanup (a checkpoint covers it): older ones are gone too
            break
        info = {}
        for line in lines:
            with contextlib.suppress(ValueError):  # a garbled line: history() reads what it can, so does this
                info = json.loads(line)["commitInfo"]
        entries.append({**info, "version": version})
    return entries


def _check_commit_not_empty(root: str, version: int) -> None:
    """A local table's commit files that delta-rs replays for ``version`` have bytes.

    Those are the commits after the latest checkpoint at or below ``version`` up to ``version`` (all of them
    without such a checkpoint); a zero-byte one reads as a commit without changes, so the version opens
    without its rows. Commits a checkpoint covers are not read, so an empty one there does no harm. One
    listing of ``_delta_log`` and one ``stat`` per candidate: a log can hold thousands of commits.
    """
    if not is_local_path(root):  # a stat on an object store is a request; its puts are whole anyway
        return
    log = os.path.join(_normalize(root), "_delta_log")
    commits: list[os.DirEntry[str]] = []
    checkpoint = -1
    try:
        with os.scandir(log) as entries:
            for entry in entries:
                found = _LOG_FILE.fullmatch(entry.name)
                if found is None or int(found["version"]) > version:
                    continue
                if found["checkpoint"]:
                    checkpoint = max(checkpoint, int(found["version"]))
                else:
                    commits.append(entry)
    except OSError:  # delta-rs just read the folder; gone since: the next open says so
        return
    empty = sorted(entry.name for entry in commits
                   if int(entry.name[:20]) > checkpoint and _size(entry) == 0)
    if empty:
        names = ", ".join(empty[:3]) + (f" and {len(empty) - 3} more" if len(empty) > 3 else "")
        err = EmptyCommitError(f"commit file{'s' if len(empty) > 1 else ''} {names} "
                               f"{'are' if len(empty) > 1 else 'is'} empty (0 bytes)")
        raise unreadable_delta_log(root, err) from err


def _size(entry: os.DirEntry[str]) -> int:
    """Bytes of a log file; -1 when it is gone (a concurrent cleanup), which is not an empty commit."""
    try:
        return entry.stat().st_size
    except OSError:
        return -1
