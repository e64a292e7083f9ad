"""Spark, Arrow and Delta schemas: conversion, compatibility checks and the write plan (driver side)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from jobs.delta_io.errors import DeltaWriteError, SourceReadError, _summary

# --------------------------------------------------------------------------------------------
# driver side: schemas, checks, commit


def by_name(name: str) -> Any:
    """The column named ``name`` as it is: quoted, so a '.' is not a struct field's path (nor a backtick a quote)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _nullable(dtype: Any) -> Any:
    """Delta Spark stores DataFrame writes as nullable; Spark's nullability flags are too fickle to keep."""
    from pyspark.sql import types as T

    if isinstance(dtype, T.StructType):
        return T.StructType([T.StructField(f.name, _nullable(f.dataType), True, f.metadata) for f in dtype])
    if isinstance(dtype, T.ArrayType):
        return T.ArrayType(_nullable(dtype.elementType), True)
    if isinstance(dtype, T.MapType):
        return T.MapType(_nullable(dtype.keyType), _nullable(dtype.valueType), True)
    return dtype


def stored_schema(contract: pa.Schema) -> pa.Schema:
    """The schema a Delta table written from a DataFrame with ``contract`` gets, on both paths.

    Names, order and types stay; every column (and nested field) becomes nullable, because Delta
    Spark stores DataFrame writes as nullable (``schema.asNullable``) and the local path does
    the same, so a table reads back alike whichever path wrote it.
    """
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    return to_arrow_schema(_nullable(from_arrow_schema(contract)))


@dataclass(frozen=True)
class FrameToWrite:
    """What both Delta paths write: ``df`` with its columns in write order, and ``schema``, the
    Spark schema the table gets from it (``df``'s types, every field nullable)."""

    df: Any
    schema: Any


def frame_to_write(df: Any, columns: Sequence[str] | None = None) -> FrameToWrite:
    """The one "frame to write" of :class:`~jobs.delta_io.LocalDeltaIO` and ``NativeDeltaIO``.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    columns : sequence of str, optional
        Write order (the local path passes an existing table's order); default ``df.columns``.
    """
    names = list(df.columns if columns is None else columns)
    selected = df.select(*[by_name(n) for n in names])
    return FrameToWrite(selected, _nullable(selected.schema))


def _arrow_schema(spark_schema: Any, table: str) -> pa.Schema:
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_schema

    fields = []
    for f in spark_schema:
        try:
            fields.append(to_arrow_schema(T.StructType([f])).field(0))
        except (TypeError, ValueError, NotImplementedError) as err:
            raise DeltaWriteError(
                f"column {f.name!r} has type {f.dataType.simpleString()}, which the local Delta writer cannot "
                f"store in {table} ({err}); cast it (e.g. to string) before writing"
            ) from err
    return pa.schema(fields)


def _delta_schema(arrow_schema: pa.Schema, table: str) -> Any:
    from deltalake import Schema

    try:
        return Schema.from_arrow(arrow_schema)
    except Exception as whole:  # noqa: BLE001 - delta-rs raises assorted types; find the column below
        for f in arrow_schema:
            try:
                Schema.from_arrow(pa.schema([f]))
            except Exception as err:  # noqa: BLE001
                raise DeltaWriteError(
                    f"column {f.name!r} has Arrow type {f.type}, which Delta cannot store in {table} "
                    f"({_summary(err)}); cast it to a supported type before writing"
                ) from err
        raise DeltaWriteError(
            f"the DataFrame schema cannot become a Delta schema for {table}: {_summary(whole)}"
        ) from whole


def _delta_types(schema: Any) -> dict[str, Any]:
    """Column name -> Delta type JSON without nullability or field metadata."""

    def strip(t: Any) -> Any:
        if isinstance(t, dict):
            skip = ("nullable", "containsNull", "valueContainsNull", "metadata")
            return {k: strip(v) for k, v in t.items() if k not in skip}
        if isinstance(t, list):
            return [strip(v) for v in t]
        return t

    return {f["name"]: strip(f["type"]) for f in json.loads(schema.to_json())["fields"]}


def _type_name(delta_type: Any) -> str:
    return delta_type if isinstance(delta_type, str) else json.dumps(delta_type, separators=(",", ":"))


def _schema_mismatch(table: str, mode: str, table_types: dict, df_types: dict) -> DeltaWriteError:
    problems = []
    lower_table = {name.lower(): name for name in table_types}
    for name, dtype in table_types.items():
        if name not in df_types:
            problems.append(f"column {name!r} is missing from the DataFrame")
        elif df_types[name] != dtype:
            problems.append(
                f"column {name!r} is {_type_name(dtype)} in the table but {_type_name(df_types[name])} in the DataFrame"
            )
    for name in df_types:
        if name not in table_types:
            twin = lower_table.get(name.lower())
            hint = f" (the table has {twin!r}; names are case-sensitive)" if twin else ""
            problems.append(f"column {name!r} is not in the table{hint}")
    return DeltaWriteError(
        f"cannot {mode} to Delta table {table}: the DataFrame's schema differs from the table's: "
        f"{'; '.join(problems)}. Select and cast the DataFrame's columns to the table schema, or write with "
        f"mode='overwrite', overwrite_schema=True to replace the table's schema"
    )


def check_readable_locally(
    table: str, protocol: Any, configuration: Mapping[str, str], *, files_with_deletion_vectors: int = 0
) -> None:
    """Raise :class:`SourceReadError` if reading the table's Parquet files directly would be wrong.

    Column mapping renames the physical Parquet columns; deletion vectors mark rows deleted without
    rewriting files. Either way, reading the files without the Delta jars returns wrong data. The
    deletion vector feature alone (no vectors in the snapshot) is harmless: it is on by default on
    Databricks.

    Parameters
    ----------
    table : str
        Table path, for the message.
    protocol : deltalake.table.ProtocolVersions
        ``DeltaTable.protocol()``.
    configuration : mapping
        ``DeltaTable.metadata().configuration``.
    files_with_deletion_vectors : int
        Number of files of the snapshot that carry a deletion vector.
    """
    mode = str(configuration.get("delta.columnMapping.mode", "none")).lower()
    if mode != "none":
        raise SourceReadError(
            f"Delta table {table} uses column mapping (delta.columnMapping.mode={mode}, protocol reader version "
            f"{protocol.min_reader_version}): its Parquet files hold renamed physical columns, which the local "
            f"reader (no Delta jars) cannot map back. Run with the Delta Spark extension "
            f"(pip install 'lakelabel[delta]', or on Databricks)"
        )
    if files_with_deletion_vectors:
        raise SourceReadError(
            f"Delta table {table} has deletion vectors on {files_with_deletion_vectors} file(s) (reader features: "
            f"{protocol.reader_features}): rows deleted there are still in the Parquet files, so the local reader "
            f"(no Delta jars) would return them. Run with the Delta Spark extension, or rewrite the files first "
            f"with `REORG TABLE ... APPLY (PURGE)` (or OPTIMIZE) on a Delta engine"
        )


def _check_writable_locally(table: str, dt: Any, mode: str) -> None:
    """Refuse tables whose features the local writer would silently violate."""
    config = dt.metadata().configuration
    mode_cm = str(config.get("delta.columnMapping.mode", "none")).lower()
    refuse = []
    if mode_cm != "none":
        refuse.append(f"column mapping (delta.columnMapping.mode={mode_cm})")
    constraints = sorted(k for k in config if k.startswith("delta.constraints."))
    if constraints:
        refuse.append(f"CHECK constraints ({', '.join(constraints)})")
    special = ("delta.generationExpression", "delta.identity", "delta.invariants")
    for f in json.loads(dt.schema().to_json())["fields"]:
        used = sorted(k for k in f.get("metadata", {}) if k.startswith(special))
        if used:
            refuse.append(f"column {f['name']!r} metadata {used}")
    if mode == "overwrite" and str(config.get("delta.appendOnly", "false")).lower() == "true":
        refuse.append("delta.appendOnly=true (overwrite would remove files)")
    if refuse:
        raise DeltaWriteError(
            f"the local Delta writer (no Delta jars) cannot {mode} to {table}: it does not enforce "
            f"{'; '.join(refuse)}. Write with the Delta Spark extension instead"
        )


@dataclass(frozen=True)
class _WritePlan:
    action: Literal["create", "append", "overwrite", "replace"]
    arrow_schema: pa.Schema  # full table schema, in table column order
    delta_schema: Any
    partition_by: tuple[str, ...]
    not_null: tuple[str, ...] = ()

    @property
    def file_schema(self) -> pa.Schema:
        # Files keep every column nullable; NOT NULL is checked on the data before writing.
        return pa.schema([f.with_nullable(True) for f in self.arrow_schema if f.name not in self.partition_by])


def _plan_write(
    df: Any, table: str, dt: Any, mode: str, partition_by: tuple[str, ...], overwrite_schema: bool
) -> _WritePlan:
    df_arrow = _arrow_schema(_nullable(df.schema), table)
    names = df_arrow.names
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise DeltaWriteError(
                f"columns {seen[name.lower()]!r} and {name!r} differ only in case; Delta column names are "
                f"case-insensitive. Rename one before writing {table}"
            )
        seen[name.lower()] = name
    for column in partition_by:
        if column not in names:
            raise DeltaWriteError(
                f"partition column {column!r} is not a column of the DataFrame written to {table}; "
                f"its columns are: {', '.join(names)}"
            )
        ptype = df_arrow.field(column).type
        if pa.types.is_nested(ptype) or pa.types.is_binary(ptype) or pa.types.is_large_binary(ptype):
            raise DeltaWriteError(
                f"partition column {column!r} has type {ptype}; Delta partition columns must be primitive "
                f"(string, numbers, dates, timestamps, booleans). Partition {table} by another column"
            )
    if len(set(partition_by)) != len(partition_by) or (partition_by and len(partition_by) == len(names)):
        raise DeltaWriteError(
            f"partition_by={list(partition_by)} for {table} must list distinct columns and leave at least one "
            f"column outside the partitioning"
        )
    df_delta = _delta_schema(df_arrow, table)
    if dt is None:
        return _WritePlan("create", df_arrow, df_delta, partition_by)

    table_parts = tuple(dt.metadata().partition_columns)
    parts = partition_by or table_parts
    if parts != table_parts:
        if mode == "overwrite" and overwrite_schema:
            return _WritePlan("replace", df_arrow, df_delta, parts)
        fix = (
            "pass overwrite_schema=True to rewrite the table with the new partitioning"
            if mode == "overwrite"
            else "leave partition_by empty to use the table's partitioning, or overwrite with overwrite_schema=True"
        )
        raise DeltaWriteError(
            f"Delta table {table} is partitioned by {list(table_parts)}, but the write asks for {list(parts)}; {fix}"
        )
    table_types, df_types = _delta_types(dt.schema()), _delta_types(df_delta)
    if table_types != df_types:
        if mode == "overwrite" and overwrite_schema:
            return _WritePlan("overwrite", df_arrow, df_delta, parts)
        raise _schema_mismatch(table, mode, table_types, df_types)
    table_arrow = pa.schema(dt.schema().to_arrow())
    not_null = tuple(f.name for f in table_arrow if not f.nullable)
    return _WritePlan(mode, table_arrow, dt.schema(), parts, not_null)  # type: ignore[arg-type]
