"""Old labels as an LF: a column whose values map to the label space.

An earlier labeling process, a legacy rule engine or a vendor feed leaves a column of labels,
in the source or in another table keyed by the same ids. :func:`column_lf` turns it into an LF:
mapped values vote their class, unmapped values and nulls abstain. It then shows in the votes
table and the LF summary like any other LF, so its empirical accuracy is measured, not assumed.

Values are compared as strings after casting the column to string in Spark (``1`` matches the
key ``1`` or ``"1"``, ``true`` the key ``true``). The LF runs as a native Spark column; a
``table=`` column is joined to the source by id first (see :func:`jobs.apply_lfs.compute_votes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lf_library.apply import class_id
from lf_library.builders import DeclarativeLF, _check_label
from lf_library.core import ABSTAIN, _as_record
from lf_library.errors import InputDataError, LFConfigError, LFError

__all__ = ["ColumnLF", "column_lf"]


_INTEGER = re.compile(r"-?[0-9]+")


def _whole(key: str) -> str | None:
    """``"1.0"`` -> ``"1"``: the integer a whole-number key means; None when it is not one."""
    try:
        number = float(key)
    except ValueError:
        return None
    return str(int(number)) if number.is_integer() else None


def _key(value: Any) -> str:
    """A mapping key as Spark's ``CAST(value AS STRING)`` writes the value."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class ColumnLF(DeclarativeLF):
    """Votes the class its mapping gives to the value of a column; runs on Spark."""

    def __init__(self, name: str, spec: dict[str, Any], *, label_space: Sequence[str] | None) -> None:
        table = spec.get("table")
        self.origin = f"column {spec['column']}" + (f" of table {table}" if table else "")
        super().__init__(name, spec, label_space=label_space, fields=None)

    @property
    def runs_on_spark(self) -> bool:
        return True

    def _resolve(self, label_space: tuple[str, ...] | None) -> dict[str, int] | None:
        if label_space is None and any(isinstance(label, str) for _, label in self.spec["mapping"]):
            return None
        return {key: class_id(label, label_space, lf_name=self.name) for key, label in self.spec["mapping"]}

    def _mapping(self) -> dict[str, int]:
        if self._resolved is None:
            raise self._unresolved(next(label for _, label in self.spec["mapping"] if isinstance(label, str)))
        return self._resolved

    def spark_column(self, column: Any = None) -> Any:
        """The votes as a pyspark Column: the mapped class id, or -1 for unmapped values and nulls.

        Parameters
        ----------
        column : pyspark Column, optional
            Where the values are; default the source column ``spec['column']`` (the apply job
            passes the joined column for a ``table=`` LF).
        """
        from pyspark.sql import functions as F

        values = F.col(self.spec["column"]) if column is None else column
        pairs = []
        for key, cid in self._mapping().items():
            pairs += [F.lit(key), F.lit(cid)]
        looked_up = F.element_at(F.create_map(*pairs), values.cast("string"))
        return F.when(values.isNull(), F.lit(ABSTAIN)).otherwise(F.coalesce(looked_up, F.lit(ABSTAIN))).cast("int")

    def check_column_type(self, data_type: Any, where: str) -> None:
        """Refuse mapping keys no value of a column of Spark type ``data_type`` can equal as text (``where``: the
        source or table the column is in): ``1.0`` on an integer column (Spark writes ``1``), ``1`` on a double
        one (``1.0``), anything but ``true`` / ``false`` on a boolean one. Such an LF would vote on no row.

        Raises
        ------
        LFConfigError
            Naming the keys, the column and its type, and the keys to write instead.
        """
        from pyspark.sql import types as T

        keys = [key for key, _ in self.spec["mapping"]]
        if isinstance(data_type, T.BooleanType):
            bad, written = {k: None for k in keys if k not in ("true", "false")}, "true or false"
        elif isinstance(data_type, T.IntegralType):
            bad, written = {k: _whole(k) for k in keys if not _INTEGER.fullmatch(k)}, "1"
        elif isinstance(data_type, (T.DoubleType, T.FloatType)):
            bad, written = {k: f"{k}.0" for k in keys if _INTEGER.fullmatch(k)}, "1.0"
        else:
            return
        if bad:
            fixes = [f"{k!r} -> {v}" for k, v in bad.items() if v is not None]
            raise LFConfigError(
                f"LF {self.name!r}: mapping key(s) {list(bad)} can never match column {self.spec['column']!r} of "
                f"{where}, a {data_type.simpleString()} column (values are compared as Spark writes them as text, "
                f"such as {written}); "
                + (f"write {', '.join(fixes)}" if fixes else "map values of the column") + " in the mapping"
            )

    def __call__(self, x: Any) -> int:
        """Vote on one row holding the column (for notebooks; a ``table=`` LF runs on Spark only)."""
        if self.spec.get("table"):
            raise LFError(f"LF {self.name!r} reads table {self.spec['table']}; run it on Spark with the apply job")
        record = _as_record(x)
        column = self.spec["column"]
        if column not in record:
            raise InputDataError(f"LF {self.name!r} reads column {column!r}, which the row lacks; it has {sorted(record)}")
        value = record[column]
        if value is None:
            return ABSTAIN
        return self._mapping().get(_key(value), ABSTAIN)


def column_lf(
    name: str,
    column: str,
    mapping: Mapping[Any, int | str | None],
    *,
    table: str | None = None,
    id_column: str | None = None,
    label_space: Sequence[str] | None = None,
) -> ColumnLF:
    """An LF that votes what an existing column says, through ``mapping``.

    Parameters
    ----------
    name : str
        LF name.
    column : str
        The column holding the old labels.
    mapping : mapping
        Column value -> class name or id; a value mapped to ``None`` and any value not in the
        mapping abstain, and so do nulls. Part of the version.
    table : str, optional
        A Delta table, Parquet or CSV path holding ``column``, joined to the source by id.
        Default: the column is in the source.
    id_column : str, optional
        The id column of ``table``; default the source's id column.

    Examples
    --------
    >>> column_lf("old_underwriter", "legacy_class", {"SPAM": "spam", "OK": "ham"})  # doctest: +SKIP
    """
    if not isinstance(column, str) or not column:
        raise LFConfigError(f"LF {name!r}: column must be a column name, got {column!r}")
    if not isinstance(mapping, Mapping) or not mapping:
        raise LFConfigError(
            f"LF {name!r}: mapping must be a non-empty dict of column value -> class, e.g. {{'SPAM': 'spam'}}; "
            f"got {mapping!r}"
        )
    pairs: dict[str, int | str] = {}
    for value, label in mapping.items():
        if value is None:
            raise LFConfigError(f"LF {name!r}: mapping key None is not allowed; nulls always abstain")
        key = _key(value)
        if key in pairs:
            raise LFConfigError(f"LF {name!r}: mapping has the value {key!r} twice (as compared as strings)")
        if label is not None:
            pairs[key] = _check_label(label, name)
    if not pairs:
        raise LFConfigError(f"LF {name!r}: mapping maps every value to None; map at least one value to a class")
    if table is not None and (not isinstance(table, str) or not table):
        raise LFConfigError(f"LF {name!r}: table must be a table path, got {table!r}")
    if id_column is not None and (not isinstance(id_column, str) or not id_column):
        raise LFConfigError(f"LF {name!r}: id_column must be a column name, got {id_column!r}")
    spec = {
        "kind": "column",
        "column": column,
        "mapping": sorted(([k, v] for k, v in pairs.items()), key=lambda kv: kv[0]),
        "table": table,
        "id_column": id_column,
    }
    return ColumnLF(name, spec, label_space=label_space)
