"""What both Delta IO paths share about commits: the write arguments and result, lakelabel's
commit metadata, and reading it back from a table's history.

lakelabel stores a write's ``commit_metadata`` as one JSON object in ``commitInfo.userMetadata``
(Delta Spark's write option ``userMetadata``; delta-rs' ``CommitProperties(custom_metadata=
{"userMetadata": ...})`` writes the same field), with its bookkeeping keys (write id, exactly-once
transaction) beside the caller's. The functions here build that string and read it back from
history entries, which come as delta-rs dicts (:class:`jobs.delta_io.local.LocalDeltaIO`) or Delta
Spark history rows (:class:`jobs.delta_io.native.NativeDeltaIO`); each path passes its own
``history(limit)`` callable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

WriteMode = Literal["append", "overwrite"]
_WRITE_MODES = ("append", "overwrite")

# Identifies a write's own commit in the history; stored inside the userMetadata JSON.
_WRITE_ID_KEY = "lakelabel.writeId"
# An exactly-once write's (app_id, app_version), also in the userMetadata JSON: Delta Spark has no
# public API that reads a table's transaction versions, so the native path looks for these.
_TXN_APP_KEY = "lakelabel.txnAppId"
_TXN_VERSION_KEY = "lakelabel.txnVersion"
# lakelabel's bookkeeping keys: in every commit it writes, never part of read_metadata's answer.
_INTERNAL_KEYS = frozenset({_WRITE_ID_KEY, _TXN_APP_KEY, _TXN_VERSION_KEY})
_USER_METADATA = "userMetadata"
# How many commits read_metadata, unchanged_since and the native exactly-once check look back.
_HISTORY_WINDOW = 50
# Operations that leave a table's rows as they were (Delta Spark's DeltaOperations and delta-rs use
# these names): file compaction (OPTIMIZE, Databricks auto compaction and predictive optimization),
# deletion-vector purges (REORG), VACUUM, and table property, protocol, constraint and statistics
# changes. Commits of these sit between a lakelabel commit and the latest version without making
# that commit's metadata stale.
_DATA_NEUTRAL_OPERATIONS = frozenset(
    {
        "OPTIMIZE", "REORG", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "UNSET TBLPROPERTIES",
        "UPGRADE PROTOCOL", "ADD CONSTRAINT", "DROP CONSTRAINT", "COMPUTE STATS", "CLUSTER BY", "Empty Commit",
    }
)  # fmt: skip
# commitInfo keys written by Delta engines themselves; read_metadata's fallback for tables written
# before the metadata moved into userMetadata treats everything else as the caller's metadata.
_ENGINE_COMMIT_KEYS = frozenset(
    {
        "timestamp", "operation", "operationParameters", "operationMetrics", "engineInfo", "clientVersion",
        "version", "readVersion", "isolationLevel", "isBlindAppend", "userId", "userName", "txnId",
        "inCommitTimestamp", "job", "notebook", "clusterId", "tags", _USER_METADATA, _WRITE_ID_KEY,
    }
)  # fmt: skip


@dataclass(frozen=True)
class WriteResult:
    """Outcome of :func:`jobs.delta_io.write_table` and the IO classes' ``write_table``.

    ``version`` is the committed table version, or None when the write was ``skipped``
    because the ``(app_id, app_version)`` transaction was already committed.
    """

    path: str
    version: int | None
    num_files: int
    num_records: int
    skipped: bool = False


@contextmanager
def _job_description(spark: Any, description: str | None) -> Iterator[None]:
    try:
        sc = spark.sparkContext if description else None
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext; the description is cosmetic
        sc = None
    if sc is None:
        yield
        return
    previous = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription(description)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.job.description", previous)


def _user_metadata(
    commit_metadata: Mapping[str, str] | None,
    write_id: str,
    app_id: str | None = None,
    app_version: int | None = None,
) -> str:
    """The ``commitInfo.userMetadata`` string of a lakelabel commit: one JSON object."""
    meta = {**dict(commit_metadata or {}), _WRITE_ID_KEY: write_id}
    if app_id is not None:
        meta.update({_TXN_APP_KEY: app_id, _TXN_VERSION_KEY: str(app_version)})
    return json.dumps(meta, sort_keys=True)


def _commit_metadata(commit: Mapping[str, Any]) -> dict[str, Any]:
    """lakelabel's metadata of one history entry (delta-rs dict or a Delta Spark history row).

    Parses the ``userMetadata`` JSON object, write id included. A ``userMetadata`` that is not
    a JSON object (set by another tool) comes back as ``{"userMetadata": text}``; commits without
    one (written before lakelabel moved its keys from the top of ``commitInfo`` into
    ``userMetadata``) give those top-level keys.
    """
    raw = commit.get(_USER_METADATA)
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except (TypeError, ValueError):
            parsed = None
        return dict(parsed) if isinstance(parsed, dict) else {_USER_METADATA: raw}
    return {k: v for k, v in commit.items() if k not in _ENGINE_COMMIT_KEYS or k == _WRITE_ID_KEY}


def _public_metadata(commit: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _commit_metadata(commit).items() if k not in _INTERNAL_KEYS}


def _is_lakelabel_commit(commit: Mapping[str, Any]) -> bool:
    return any(str(key).startswith("lakelabel.") for key in _commit_metadata(commit))


def _metadata_in_history(history: Callable[[int], Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """read_metadata's answer from ``history(limit)`` (history entries, newest first).

    The metadata of the newest lakelabel commit, when every commit after it (within
    ``_HISTORY_WINDOW``) is data-neutral (OPTIMIZE, VACUUM, ...: ``_DATA_NEUTRAL_OPERATIONS``), so
    it still describes the table's rows. Otherwise, as for tables lakelabel never wrote, the
    latest commit's metadata: a commit by another writer that changed the rows hides lakelabel's,
    so its stage summary is not trusted for rows it does not describe.
    """
    entries = list(history(1))
    if entries and not _is_lakelabel_commit(entries[0]):
        entries = list(history(_HISTORY_WINDOW))
    return _describing_metadata(entries)


def _metadata_at(history: Callable[[int], Sequence[Mapping[str, Any]]], latest: int, version: int) -> dict[str, Any]:
    """What read_metadata answered when the table was at ``version`` (for a restore to it)."""
    entries = [e for e in history(latest - version + _HISTORY_WINDOW) if int(e.get("version", -1)) <= version]
    return _describing_metadata(entries)


def _describing_metadata(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    for entry in entries:
        if _is_lakelabel_commit(entry):
            return _public_metadata(entry)
        if entry.get("operation") == "RESTORE":  # an operator's RESTORE: the restored version's metadata
            target = _restored_version(entry)
            older = [e for e in entries if target is not None and int(e.get("version", -1)) <= target]
            if older:
                return _describing_metadata(older)
            break
        if entry.get("operation") not in _DATA_NEUTRAL_OPERATIONS:
            break
    return _public_metadata(entries[0]) if entries else {}


def _unchanged_in_history(
    history: Callable[[int], Sequence[Mapping[str, Any]]], latest: int | None, version: int | None
) -> bool:
    """unchanged_since's answer: the rows at ``latest`` are those of ``version``. Every commit after it is
    data-neutral, or a RESTORE brought back a version whose rows were those of ``version`` (a failed run's
    rollback to the rows a later stage had read, or an operator's RESTORE after a bad write)."""
    if latest is None or version is None or not 0 <= version <= latest:
        return False
    if version == latest:
        return True
    if latest - version > _HISTORY_WINDOW:
        return False
    # A concurrent commit may already be in the history: only the versions up to ``latest`` count.
    later = sorted((entry for entry in history(latest - version) if version < int(entry.get("version", -1)) <= latest),
                   key=lambda e: int(e["version"]))
    if len(later) != latest - version:
        return False
    same = {version: True}  # per version from ``version`` on: are its rows those of ``version``?
    for entry in later:
        v, op = int(entry["version"]), entry.get("operation")
        if op in _DATA_NEUTRAL_OPERATIONS:
            same[v] = same[v - 1]
        elif op == "RESTORE":
            same[v] = same.get(_restored_version(entry), False)
        else:
            same[v] = False
    return same[latest]


def _restored_version(entry: Mapping[str, Any]) -> int | None:
    """The version a RESTORE commit brought back (None when restored by timestamp)."""
    try:
        return int((entry.get("operationParameters") or {}).get("version"))
    except (TypeError, ValueError):
        return None


def _txn_in_history(history: Sequence[Mapping[str, Any]], app_id: str) -> int | None:
    """The app_version of the newest lakelabel commit in ``history`` that recorded ``app_id``."""
    for entry in history:
        meta = _commit_metadata(entry)
        if meta.get(_TXN_APP_KEY) == app_id:
            try:
                return int(meta[_TXN_VERSION_KEY])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _restored_metadata(metadata: Mapping[str, Any], reason: str) -> str:
    """userMetadata of a restore commit: the lakelabel keys of the restored version's metadata
    (:func:`_metadata_at`), plus the reason, so read_metadata (the stage summaries) sees what the
    table holds."""
    kept = {k: str(v) for k, v in metadata.items() if k.startswith("lakelabel.")}
    kept["lakelabel.restore"] = reason
    return json.dumps(kept, sort_keys=True)


def _check_write_args(mode: str, app_id: str | None, app_version: int | None, overwrite_schema: bool) -> None:
    if mode not in _WRITE_MODES:
        raise ValueError(f"mode must be one of {', '.join(_WRITE_MODES)}; got {mode!r}")
    if (app_id is None) != (app_version is None):
        raise ValueError("app_id and app_version go together: pass both for an exactly-once commit, or neither")
    if app_version is not None and (type(app_version) is not int or app_version < 0):
        raise ValueError(f"app_version must be an int >= 0; got {app_version!r}")
    if overwrite_schema and mode != "overwrite":
        raise ValueError("overwrite_schema=True needs mode='overwrite'; appends never change the table schema")

