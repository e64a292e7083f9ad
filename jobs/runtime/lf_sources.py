"""Where the apply job's LFs come from, beyond Python modules: declared LFs, joined tables, models.

- :func:`build_registry`: LF modules plus the LFs declared in the config (``lfs.declared``,
  ``lfs.files``), with model LFs resolved against the pipeline's MLflow store.
- :func:`join_lf_tables`: column LFs that read another table get that column joined by id.
- :func:`check_models`: model LFs load their model on the driver and score a few source rows, so a
  label map that does not fit the model fails in seconds, before the LFs run over the source.
- :func:`warn_unversioned`: one warning per LF that reads a global its version cannot cover.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime.config import PipelineConfig, SourceConfig
from jobs.runtime.tracking import tracking_uri
from jobs.delta_io.errors import SourceReadError
from jobs.delta_io.sources import Source, load_source, precheck_columns, precheck_source_path
from lf_library import LabelingFunction, LFRegistry, load_registry
from lf_library.declared import declared_lfs
from lf_library.errors import ConfigError, InputDataError
from lf_library.models import set_tracking_uri

log = logging.getLogger(__name__)

__all__ = ["build_registry", "join_lf_tables", "precheck_lf_tables", "lf_table_fingerprints", "check_models",
           "warn_unversioned"]

_warned: weakref.WeakSet = weakref.WeakSet()  # LFs already warned about in this process


def build_registry(cfg: PipelineConfig) -> LFRegistry:
    """The LF registry named by the config: modules, then declared LFs, then include/exclude."""
    lfs = cfg.lfs
    if not lfs.modules and not lfs.declared and not lfs.files:
        raise ConfigError(
            "no LFs configured: list Python modules under lfs.modules (e.g. [lf_library.lfs.demo]), or declare "
            "LFs under lfs.declared / lfs.files"
        )
    # Model LFs resolve their URIs in the pipeline's MLflow store unless they name another.
    set_tracking_uri(tracking_uri(cfg))
    if lfs.modules:
        registry = load_registry(lfs.modules, label_space=lfs.label_space)
    elif lfs.label_space:
        registry = LFRegistry(lfs.label_space)
    else:
        raise ConfigError("lfs.label_space is not set; declared LFs need it when no LF module defines LABEL_SPACE")
    for lf, origin in declared_lfs(lfs.declared, lfs.files, base=Path(".")):
        registry.register(lf, origin=origin)
    if lfs.include is None and not lfs.exclude:
        return registry
    return registry.select(include=lfs.include, exclude=lfs.exclude, config_key="lfs")


# How lf_library._versioning names a default argument it cannot version: ``lf(words=...)``.
_DEFAULT = re.compile(r"\((\w+)=\.\.\.\)$")


def warn_unversioned(lfs: Iterable[LabelingFunction]) -> None:
    """Warn once per LF about the globals it reads that its version cannot cover.

    Votes are reused by LF version, so an edit to such a global (a CSV read into a module global
    at import, an object) would otherwise leave stale votes in place with a clean exit. Each LF is
    named once per process, however often the registry is loaded.
    """
    for lf in lfs:
        found = getattr(lf, "unversioned_globals", ())
        if not found or lf in _warned:
            continue
        _warned.add(lf)
        what = ", ".join(f"{'default argument' if _DEFAULT.search(name) else 'global'} {name} (a {kind})"
                         for name, kind in found)
        first = found[0][0]
        default = _DEFAULT.search(first)
        log.warning(
            "LF %r reads %s, which its version does not cover: edits to %s do not change LF %r's "
            "version, so its stored votes are reused; pass the data as a resource (resources={%r: ...}, plain data "
            "such as a set or dict) or give the object a __lakelabel_version__ string attribute, or rerun with "
            "--force (run, apply) after editing it",
            lf.name, what, "them" if len(found) > 1 else "it", lf.name,
            default.group(1) if default else first.rpartition(".")[2],
        )


def _table_lfs(lfs: Sequence[LabelingFunction]) -> list[LabelingFunction]:
    return [lf for lf in lfs if lf.kind == "column" and lf.spec.get("table")]


def _load_table(source: Source, lf: LabelingFunction, cache: dict[tuple[str, str], Source]) -> Source:
    table, id_col = lf.spec["table"], lf.spec.get("id_column") or source.id_column
    key = (table, id_col)
    if key not in cache:
        spark = source.df.sparkSession
        cfg = SourceConfig(path=table, id_column=id_col)
        try:
            cache[key] = load_source(spark, cfg, role="table")  # the error names the LF and its table=
        except (ConfigError, InputDataError, SourceReadError) as err:  # a missing path, a bad id column, ...
            kind = ConfigError if isinstance(err, ConfigError) else InputDataError
            raise kind(f"LF {lf.name!r} reads table {table} (its table=): {err}") from None
        if lf.spec["column"] not in cache[key].df.columns:
            raise InputDataError(
                f"LF {lf.name!r} reads column {lf.spec['column']!r} of table {table}, which has only "
                f"{cache[key].df.columns}; fix the LF's column="
            )
    return cache[key]


def precheck_lf_tables(lfs: Sequence[LabelingFunction], id_column: str) -> None:
    """Before Spark starts: the table a column LF joins (its ``table=``) has the LF's id and value
    columns, for local tables (read as :func:`jobs.delta_io.sources.precheck_columns` does)."""
    for lf in _table_lfs(lfs):
        table, id_col = lf.spec["table"], lf.spec.get("id_column") or id_column
        try:
            joined = SourceConfig(path=table, id_column=id_col)
            precheck_source_path(joined, role="table", key="its table=")
            precheck_columns(joined, {id_col: "its id_column=", lf.spec["column"]: "its column="})
        except (InputDataError, SourceReadError) as err:
            raise type(err)(f"LF {lf.name!r} reads table {table} (its table=): {err}") from None


def lf_table_fingerprints(source: Source, lfs: Sequence[LabelingFunction]) -> list[str]:
    """``name:fingerprint`` of the tables column LFs join (they decide the votes as the source does)."""
    cache: dict[tuple[str, str], Source] = {}
    return [f"{lf.name}:{_load_table(source, lf, cache).info.fingerprint}" for lf in _table_lfs(lfs)]


def join_lf_tables(source: Source, lfs: Sequence[LabelingFunction]) -> tuple[DataFrame, dict[str, str]]:
    """The source with the column of every ``table=`` column LF left-joined by id.

    Returns the DataFrame and LF name -> name of its joined column. A table whose ids repeat
    fails: an old label per row is what the LF votes.
    """
    df = source.df
    for lf in lfs:
        if lf.kind == "column" and not lf.spec.get("table") and lf.spec["column"] not in df.columns:
            raise InputDataError(
                f"LF {lf.name!r} reads column {lf.spec['column']!r}, which the source lacks; available columns: "
                f"{df.columns}; fix column= or add table= to read it from another table"
            )
    joined: dict[str, str] = {}
    cache: dict[tuple[str, str], Source] = {}
    for j, lf in enumerate(_table_lfs(lfs)):
        other = _load_table(source, lf, cache)
        id_alias, col_alias = f"__lf_join_id_{j}", f"__lf_join_{j}"
        right = other.df.select(F.col(other.id_column).alias(id_alias), F.col(lf.spec["column"]).alias(col_alias))
        dupes = right.groupBy(id_alias).count().where("count > 1").limit(1).collect()
        if dupes:
            raise InputDataError(
                f"LF {lf.name!r}: table {lf.spec['table']} holds id {dupes[0][0]!r} more than once; keep one "
                f"{lf.spec['column']!r} per id (deduplicate the table or point the LF at a view that does)"
            )
        df = df.join(right, df[source.id_column] == right[id_alias], "left").drop(id_alias)
        joined[lf.name] = col_alias
    for lf in lfs:  # keys that no value of the column's type can equal: the LF would vote on no row
        if lf.kind == "column":
            name = joined.get(lf.name, lf.spec["column"])
            lf.check_column_type(df.schema[name].dataType,
                                 f"table {lf.spec['table']}" if lf.spec.get("table") else f"source {source.description}")
    return df, joined


def check_models(source: Source, lfs: Sequence[LabelingFunction], rows: int = 16) -> None:
    """Load every model LF's model on the driver and score a few source rows.

    Raises
    ------
    LFConfigError
        The model's output does not fit the label map (naming the model URI and the fix).
    InputDataError
        The model cannot score the LF's fields.
    """
    models = [lf for lf in lfs if lf.kind == "model"]
    if not models:
        return
    columns = sorted({c for lf in models for c in lf.fields})
    sample = source.df.select(*columns).limit(rows).toPandas()
    for lf in models:
        log.info("apply: checking model LF %s (%s) on %d rows", lf.name, lf.origin, len(sample))
        lf.check_output(sample)
