"""Executor side: run LFs over one Arrow batch and shape the votes for the votes table.

Pure pyarrow / numpy / pandas, no pyspark import: the apply job calls :func:`evaluate_batch` and
:func:`to_long_votes` inside ``mapInArrow``, and tests call them directly.

Fault tolerance follows Snorkel's ``fault_tolerant`` appliers, but keeps the evidence: an LF that
raises on a row votes ABSTAIN there and leaves an :class:`LFRowError` (one line, at most 200
characters) that the job writes next to the votes. When nothing fails, no per-row work is spent on
error handling.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from lf_library.core import ABSTAIN, LabelingFunction, _row_class, describe_vote
from lf_library.errors import InputDataError, LFConfigError, LFError

__all__ = [
    "BatchVotes",
    "LFRowError",
    "NOT_ONE_VOTE_PER_ROW",
    "VOTES_SCHEMA",
    "class_id",
    "evaluate_batch",
    "required_columns",
    "runs_on_spark",
    "to_long_votes",
    "vote_dtype",
    "votes_schema",
]

MAX_MESSAGE = 200
_EMPTY: Mapping[str, str] = MappingProxyType({})


# ----------------------------------------------------------------------------- schema


def votes_schema(row_id_type: pa.DataType) -> pa.Schema:
    """Schema of the long votes table (lineage columns excluded; the job adds them).

    Parameters
    ----------
    row_id_type : pyarrow.DataType
        Type of the source's id column, passed through unchanged.
    """
    return pa.schema(
        [
            pa.field("row_id", row_id_type, nullable=False),
            pa.field("lf_name", pa.string(), nullable=False),
            pa.field("lf_version", pa.string(), nullable=False),
            pa.field("vote", pa.int16(), nullable=False),
            pa.field("error", pa.string(), nullable=True),
            pa.field("error_kind", pa.string(), nullable=True),
        ]
    )


#: The votes schema for the common case of an ``int64`` row id; see :func:`votes_schema`.
VOTES_SCHEMA = votes_schema(pa.int64())


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LFRowError:
    """One LF failure on one row of a batch.

    ``message`` is one line of at most 200 characters, e.g. ``"ZeroDivisionError: division by
    zero"`` or ``"returned 7; label space is 0..2 (a, b, c)"``.
    """

    lf_index: int
    row_index: int
    kind: Literal["exception", "out_of_space", "timeout"]
    message: str


@dataclass
class BatchVotes:
    """Votes of ``m`` LFs on a batch of ``b`` rows.

    Attributes
    ----------
    votes : ndarray, shape [b, m], int8 (int16 when the cardinality passes 127)
        Class ids in ``0..k-1`` or ``-1`` (ABSTAIN, also where the LF failed).
    errors : list of LFRowError
        Empty when nothing failed.
    """

    votes: np.ndarray
    errors: list[LFRowError] = field(default_factory=list)

    def error_counts(self) -> np.ndarray:
        """Failed rows per LF, shape ``[m]``, int64."""
        counts = np.zeros(self.votes.shape[1], dtype=np.int64)
        for err in self.errors:
            counts[err.lf_index] += 1
        return counts


def vote_dtype(cardinality: int) -> np.dtype:
    """Smallest integer dtype holding ``-1..cardinality-1``: int8 up to 127 classes, else int16."""
    return np.dtype(np.int8) if cardinality <= 127 else np.dtype(np.int16)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _exception_message(exc: BaseException) -> str:
    detail = str(exc)
    return _one_line(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


# ----------------------------------------------------------------------------- labels and columns


def class_id(label: int | str, label_space: Sequence[str] | None, *, lf_name: str | None = None) -> int:
    """Resolve a label given as a class id or a class name to a class id.

    Parameters
    ----------
    label : int or str
        A class id in ``0..k-1`` or a class name from ``label_space``.
    label_space : sequence of str or None
        Class names; ``None`` when not known yet (then only ids ``>= 0`` are accepted).
    lf_name : str, optional
        Named in error messages.

    Raises
    ------
    LFConfigError
        Unknown class name, id out of range, or a class name with no label space to resolve it.
    """
    who = f"LF {lf_name!r}: " if lf_name else ""
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        label = int(label)
        if label < 0:
            raise LFConfigError(f"{who}label {label} is negative; use a class id 0..k-1 or a class name")
        if label_space is not None and label >= len(label_space):
            raise LFConfigError(
                f"{who}label {label} is outside the label space 0..{len(label_space) - 1} "
                f"({', '.join(label_space)})"
            )
        return label
    if isinstance(label, str):
        if label_space is None:
            raise LFConfigError(
                f"{who}label {label!r} is a class name but no label space is known; pass label_space=... "
                f"or register the LF in an LFRegistry"
            )
        try:
            return list(label_space).index(label)
        except ValueError:
            near = [c for c in label_space if c.casefold() == label.strip().casefold()]
            hint = (f" (did you mean {near[0]!r}? class names are case-sensitive and spaces count)" if near else
                    f" (a class id written as text, in quotes or in a CSV file, is read as a name: write the class name "
                    f"{label_space[int(label)]!r})"
                    if label.strip().isdigit() and int(label) < len(label_space) else "")
            raise LFConfigError(
                f"{who}label {label!r} is not in the label space {list(label_space)!r}{hint}; use one of these "
                f"names or a class id"
            ) from None
    raise LFConfigError(f"{who}label must be a class id (int) or a class name (str), got {label!r}")


def runs_on_spark(lf: LabelingFunction) -> bool:
    """Whether the LF is a Spark column (SQL and column LFs), computed before batches reach Python."""
    return lf.kind == "sql" or bool(getattr(lf, "runs_on_spark", False))


_runs_on_spark = runs_on_spark


def required_columns(lfs: Sequence[LabelingFunction]) -> set[str] | None:
    """Source columns the LFs read in Python; ``None`` when some LF reads all columns.

    SQL LFs are left out: they run on Spark before the batch reaches Python, and their votes come
    in through ``precomputed`` columns of :func:`evaluate_batch`.
    """
    needed: set[str] = set()
    for lf in lfs:
        if _runs_on_spark(lf):
            continue
        if lf.fields is None:
            return None
        needed.update(lf.fields)
    return needed


def _column_values(col: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Python values of a column; the numpy route is ~5x faster than ``to_pylist`` for strings."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col.to_numpy(zero_copy_only=False).tolist()
    if col.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return col.to_numpy(zero_copy_only=False).tolist()
    return col.to_pylist()


class _BatchView:
    """Per-batch caches of the inputs LFs see: row objects and DataFrames, per set of fields."""

    def __init__(self, batch: pa.RecordBatch | pa.Table, hidden: set[str]) -> None:
        self.batch = batch
        self.columns = [c for c in batch.schema.names if c not in hidden]
        self._rows: dict[tuple[str, ...], list[Any]] = {}
        self._frames: dict[tuple[str, ...], Any] = {}

    def _columns_for(self, lf: LabelingFunction) -> tuple[str, ...]:
        if lf.fields is None:
            return tuple(self.columns)
        missing = [c for c in lf.fields if c not in self.batch.schema.names]
        if missing:
            raise InputDataError(
                f"LF {lf.name!r} reads column(s) {missing} that the input lacks; available columns: "
                f"{self.columns}; fix the LF's fields= or the source table"
            )
        return lf.fields

    def rows(self, lf: LabelingFunction) -> list[Any]:
        cols = self._columns_for(lf)
        rows = self._rows.get(cols)
        if rows is None:
            cls = _row_class(cols)
            new = tuple.__new__
            if cols:
                values = [_column_values(self.batch.column(c)) for c in cols]
                rows = list(map(functools.partial(new, cls), zip(*values)))
            else:
                empty = new(cls, ())
                rows = [empty] * self.batch.num_rows
            self._rows[cols] = rows
        return rows

    def frame(self, lf: LabelingFunction) -> Any:
        cols = self._columns_for(lf)
        df = self._frames.get(cols)
        if df is None:
            df = self.batch.select(list(cols)).to_pandas()
            self._frames[cols] = df
        return df


# ----------------------------------------------------------------------------- evaluation


def _check_votes(
    values: Sequence[Any] | np.ndarray, lf: LabelingFunction, j: int, k: int, errors: list[LFRowError]
) -> np.ndarray:
    """``values`` as int64 with invalid entries set to ABSTAIN and reported as out_of_space."""
    n = len(values)
    try:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    except (ValueError, TypeError):  # ragged values such as [1, [2, 3]]: checked one by one below
        arr = np.empty(0, dtype=object)
    if arr.ndim == 1 and arr.dtype.kind in "iu" and len(arr) == n:
        arr = arr.astype(np.int64, copy=False)
        bad = (arr < ABSTAIN) | (arr >= k)
        if not bad.any():
            return arr
        out = arr.copy()
        for i in np.flatnonzero(bad):
            message = _one_line(describe_vote(int(arr[i]), lf.label_space, k))
            errors.append(LFRowError(j, int(i), "out_of_space", message))
        out[bad] = ABSTAIN
        return out
    out = np.full(n, ABSTAIN, dtype=np.int64)
    for i, v in enumerate(values):
        problem = describe_vote(v, lf.label_space, k)
        if problem is None:
            out[i] = int(v)
        else:
            errors.append(LFRowError(j, i, "out_of_space", _one_line(problem)))
    return out


def _run_rowwise(lf: LabelingFunction, rows: list[Any], j: int, errors: list[LFRowError]) -> list[Any]:
    """Call ``lf.f`` on every row, each row once, in order.

    ``list.extend(map(...))`` runs the calls in C; when a row raises, the votes before it are
    already in ``out`` and the shared iterator is past it, so the failing row is ``len(out)``:
    record it, vote ABSTAIN there and go on with the next row.
    """
    call = functools.partial(lf.f, **lf.resources) if lf.resources else lf.f
    out: list[Any] = []
    remaining = iter(rows)
    while True:
        try:
            out.extend(map(call, remaining))
            return out
        except Exception as exc:  # noqa: BLE001 - any LF failure becomes an error record
            errors.append(LFRowError(j, len(out), "exception", _exception_message(exc)))
            out.append(ABSTAIN)


class _NotOneVotePerRow(ValueError):
    """A vectorized LF's result that cannot be lined up with its rows: a bug in the LF, not a row."""


#: The messages of :class:`_NotOneVotePerRow` (recorded per row as ``out_of_space``): the apply job
#: leads with them instead of "a value outside the label space".
NOT_ONE_VOTE_PER_ROW = re.compile(
    r"^returned .*(whose index is not the DataFrame's|value\(s\) for a DataFrame of \d+ rows)")


def _as_vector(result: Any, df: Any) -> np.ndarray:
    """One vote per row of ``df``, in its order. A pandas Series is lined up by its index (a
    shuffled or sorted copy of ``df``'s index is put back in order); any other sequence is
    taken by position."""
    import pandas as pd  # df is a pandas DataFrame: already imported

    n = len(df)
    if isinstance(result, pd.Series) and not result.index.equals(df.index):
        index = result.index
        if len(index) != n or not index.is_unique or not index.isin(df.index).all():
            raise _NotOneVotePerRow(
                f"returned a Series of {len(index)} values whose index is not the DataFrame's ({n} rows); "
                f"return one vote per row, e.g. a Series on df.index or an array in row order"
            )
        result = result.reindex(df.index)
    arr = np.asarray(result)
    if arr.ndim != 1 or len(arr) != n:
        raise _NotOneVotePerRow(
            f"returned {arr.shape[0] if arr.ndim == 1 else 'an array of shape ' + str(arr.shape)} value(s) for a "
            f"DataFrame of {n} rows; return one vote per row, in the DataFrame's order"
        )
    return arr


def _run_vectorized(lf: LabelingFunction, df: Any, j: int, errors: list[LFRowError]) -> Sequence[Any] | np.ndarray:
    """Call ``lf.f`` on the batch's DataFrame. When it raises, call it on each row alone to find
    the rows that fail (their votes abstain). A result that is not one vote per row is a bug of the
    LF on every batch: each row records it as a value outside the label space, which fails the job
    whatever ``apply.max_error_rate`` is."""
    n = len(df)
    try:
        return _as_vector(lf.f(df, **lf.resources), df)
    except _NotOneVotePerRow as exc:
        errors.extend(LFRowError(j, i, "out_of_space", _one_line(str(exc))) for i in range(n))
        return np.full(n, ABSTAIN, dtype=np.int64)
    except Exception:  # noqa: BLE001 - isolate the failing rows below
        pass
    out: list[Any] = []
    for i in range(n):
        try:
            one = df.iloc[i : i + 1].reset_index(drop=True)  # as the batch's: 0..n-1, so pd.Series(...) lines up
            arr = _as_vector(lf.f(one, **lf.resources), one)
            out.append(arr[0].item() if isinstance(arr[0], np.generic) else arr[0])
        except Exception as exc:  # noqa: BLE001
            errors.append(LFRowError(j, i, "exception", _exception_message(exc)))
            out.append(ABSTAIN)
    return out


def evaluate_batch(
    lfs: Sequence[LabelingFunction],
    batch: pa.RecordBatch | pa.Table,
    *,
    precomputed: Mapping[str, str] = _EMPTY,
    cardinality: int,
    on_lf: Callable[[int, LabelingFunction], None] | None = None,
) -> BatchVotes:
    """Run every LF on one batch.

    Parameters
    ----------
    lfs : sequence of LabelingFunction
        Column ``j`` of the result holds the votes of ``lfs[j]``.
    batch : pyarrow.RecordBatch or pyarrow.Table
        Source rows. Python LFs see only their ``fields`` (all columns except the precomputed
        ones when ``fields`` is None).
    precomputed : mapping of str to str
        LF name -> column of ``batch`` that already holds its votes (SQL LFs computed by Spark).
    cardinality : int
        Number of classes ``k``; votes outside ``-1..k-1`` become errors.
    on_lf : callable, optional
        ``on_lf(j, lf)`` is called as LF ``j`` starts on the batch (the time budget of
        :mod:`lf_library.budget` restarts its timer there).

    Returns
    -------
    BatchVotes
        Votes ``[b, m]`` and the error records.

    Raises
    ------
    InputDataError
        An LF reads a column the batch lacks, or a text LF's column is not a string.
    LFError
        A SQL LF has no precomputed column.
    """
    if not isinstance(cardinality, (int, np.integer)) or cardinality < 2:
        raise LFConfigError(f"cardinality must be an int >= 2, got {cardinality!r}")
    if not isinstance(batch, (pa.RecordBatch, pa.Table)):
        raise TypeError(f"evaluate_batch takes a pyarrow RecordBatch or Table, not a {type(batch).__name__}: pass "
                        f"pa.RecordBatch.from_pandas(df, preserve_index=False) for a pandas DataFrame")
    k = int(cardinality)
    for lf in lfs:
        # LFs of several tasks (jobs/tasks.py) share a batch: each is checked against its own
        # label space; ``cardinality`` is then the largest one (it sizes the votes array).
        if lf.label_space is not None and len(lf.label_space) > k:
            raise LFConfigError(
                f"LF {lf.name!r} has {len(lf.label_space)} classes {list(lf.label_space)} but the batch is "
                f"evaluated with cardinality={k}; register every LF in one LFRegistry"
            )
    names = batch.schema.names
    for lf_name, col in precomputed.items():
        if col not in names:
            raise InputDataError(
                f"precomputed votes of LF {lf_name!r} should be in column {col!r}, which the batch lacks"
            )

    b, m = batch.num_rows, len(lfs)
    votes = np.full((b, m), ABSTAIN, dtype=vote_dtype(k))
    errors: list[LFRowError] = []
    view = _BatchView(batch, hidden=set(precomputed.values()))
    for j, lf in enumerate(lfs):
        if on_lf is not None:
            on_lf(j, lf)
        if lf.name in precomputed:
            col = batch.column(precomputed[lf.name])
            values = col.fill_null(ABSTAIN).to_numpy(zero_copy_only=False) if col.null_count else col.to_numpy()
            votes[:, j] = _check_votes(values, lf, j, lf.cardinality or k, errors)
        elif _runs_on_spark(lf):
            raise LFError(
                f"LF {lf.name!r} is a {lf.kind} LF, which runs on Spark; compute lf.spark_column() into a "
                f"column and pass precomputed={{{lf.name!r}: <column>}}"
            )
        elif hasattr(lf, "evaluate_arrow"):
            votes[:, j] = lf.evaluate_arrow(batch)
        elif lf.vectorized:
            votes[:, j] = _check_votes(_run_vectorized(lf, view.frame(lf), j, errors), lf, j, lf.cardinality or k, errors)
        else:
            votes[:, j] = _check_votes(_run_rowwise(lf, view.rows(lf), j, errors), lf, j, lf.cardinality or k, errors)
    if errors:
        errors.sort(key=lambda e: (e.row_index, e.lf_index))
    return BatchVotes(votes=votes, errors=errors)


# ----------------------------------------------------------------------------- long format


def to_long_votes(
    lfs: Sequence[LabelingFunction], row_ids: pa.Array | pa.ChunkedArray, bv: BatchVotes,
    *, order: Literal["row", "lf"] = "row",
) -> pa.RecordBatch:
    """Long-format votes: one row per (row, LF) that voted or failed, ordered by row then LF.

    Parameters
    ----------
    lfs : sequence of LabelingFunction
        The LFs of ``bv``'s columns, in the same order.
    row_ids : pyarrow.Array
        Source ids of the batch rows, in batch order; their type is kept.
    bv : BatchVotes
        Output of :func:`evaluate_batch`.
    order : {"row", "lf"}
        ``"lf"``: ordered by LF, then row (the votes table is partitioned by LF: with hundreds of
        LFs, its writer then gets long runs of one LF instead of every LF in every batch).

    Returns
    -------
    pyarrow.RecordBatch
        With schema ``votes_schema(row_ids.type)``; failed rows have ``vote = -1`` and ``error`` set.
    """
    b, m = bv.votes.shape
    if len(lfs) != m:
        raise LFConfigError(f"got {len(lfs)} LFs for a votes matrix with {m} columns")
    if len(row_ids) != b:
        raise InputDataError(f"got {len(row_ids)} row ids for a batch of {b} rows")
    if isinstance(row_ids, pa.ChunkedArray):
        row_ids = row_ids.combine_chunks()
    if row_ids.null_count:
        raise InputDataError("row ids must not be null; fix the source's id column")

    keep = bv.votes >= 0
    if bv.errors:
        err_rows = np.fromiter((e.row_index for e in bv.errors), dtype=np.int64, count=len(bv.errors))
        err_lfs = np.fromiter((e.lf_index for e in bv.errors), dtype=np.int64, count=len(bv.errors))
        keep[err_rows, err_lfs] = True
    if order not in ("row", "lf"):
        raise ValueError(f"order must be 'row' or 'lf', got {order!r}")
    if order == "lf":
        cols, rows = np.nonzero(keep.T)
        pos, width = cols * b + rows, b
    else:
        rows, cols = np.nonzero(keep)  # row-major: ordered by row, then LF
        pos, width = rows * m + cols, m
    n_out = len(rows)

    names = pa.array([lf.name for lf in lfs], pa.string())
    versions = pa.array([lf.version for lf in lfs], pa.string())
    take = pa.array(cols, pa.int64())
    if bv.errors:
        flat = {(e.row_index, e.lf_index): e for e in bv.errors}
        msg: list[str | None] = [None] * n_out
        kind: list[str | None] = [None] * n_out
        keys = [r * m + c if order == "row" else c * width + r for r, c in flat]
        where = np.searchsorted(pos, keys)
        for p, e in zip(where, flat.values()):
            msg[p] = e.message
            kind[p] = e.kind
        error = pa.array(msg, pa.string())
        error_kind = pa.array(kind, pa.string())
    else:
        error = pa.nulls(n_out, pa.string())
        error_kind = pa.nulls(n_out, pa.string())
    return pa.RecordBatch.from_arrays(
        [
            row_ids.take(pa.array(rows, pa.int64())),
            names.take(take),
            versions.take(take),
            pa.array(bv.votes[rows, cols].astype(np.int16), pa.int16()),
            error,
            error_kind,
        ],
        schema=votes_schema(row_ids.type),
    )
