"""The LF pass: every LF on every row of an Arrow batch, as the apply job's Spark tasks run it.

:func:`vote_function` builds the rows (the source's columns the LFs read, SQL LFs as Spark
columns, the gold class id when row masks are written) and the function that turns each batch
into long votes; :func:`compute_votes` is the lazy DataFrame of those votes. :func:`pickle_lfs`
ships the registry to the executors with the users' LF modules inside it.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from pyspark import cloudpickle
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_type
from pyspark.errors import AnalysisException

from jobs import apply_masks
from jobs.delta_io.files import footer, is_local_path
from jobs.delta_io.schema import by_name
from jobs.delta_io.sources import Source, check_source, gold_ids
from jobs.runtime import lf_sources
from lf_library import LabelingFunction, LFRegistry
from lf_library._versioning import OWN_PACKAGES
from lf_library.apply import evaluate_batch, required_columns, runs_on_spark, to_long_votes, votes_schema
from lf_library.budget import LFBudget, evaluate_within_budget
from lf_library.fused import evaluate_fused
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)


def votes_table_schema(row_id_type: pa.DataType) -> pa.Schema:
    """Schema of the votes table: :func:`lf_library.apply.votes_schema` plus ``run_id``."""
    return votes_schema(row_id_type).append(pa.field("run_id", pa.string(), nullable=False))


@contextlib.contextmanager
def quiet_analysis_errors() -> Iterator[None]:
    """Keep pyspark from logging the analysis errors planned here, which lakelabel words as its one line.

    pyspark logs every analysis error it raises as a JSON record with the JVM stack trace, to stderr through its own
    handler. The command line quiets those loggers (:mod:`jobs.runtime.command`) but a notebook does not: a SQL LF with
    a misspelt column printed two records of 15 KB each before try_lf's one line (a drill, session 39). A level
    someone set (``--verbose``'s DEBUG) is left alone; pyspark's own (WARNING) is put back after.
    """
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # a pyspark older than its logger
        yield
        return
    loggers = [PySparkLogger.getLogger(name) for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger")]
    quieted = [logger for logger in loggers if logger.level == logging.WARNING]
    for logger in quieted:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger in quieted:
            logger.setLevel(logging.WARNING)


def spark_lf_error(df: DataFrame, columns: dict[str, Any], err: Exception, what: str, fix: str,
                   conditions: dict[str, str] | None = None) -> str:
    """The one line for Spark expressions (SQL LFs or slices: ``columns``, name -> column) that do not
    compile against ``df``: each is planned alone to name the ones at fault (planning runs no job)."""
    bad = []
    for name, column in columns.items():
        try:
            with quiet_analysis_errors():
                df.select(column)
        except AnalysisException:
            bad.append(name)
    reason = str(err).strip().splitlines()[0].rstrip("; ")  # a parse error starts with a blank line
    return (f"SQL {what} {', '.join(map(repr, bad or columns))} does not compile against the source: {reason}; "
            f"fix {fix}" + _sql_hint(df, conditions or {}, bad or list(columns)))


def _sql_hint(df: DataFrame, conditions: dict[str, str], names: list[str]) -> str:
    """What an author who is not a SQL programmer most likely got wrong, from the condition's text."""
    hints = []
    for name in names:
        text = conditions.get(name, "")
        if text.rstrip().endswith(";"):
            hints.append(f"drop the ';' at the end of {name!r}'s condition")
        for col in df.columns:
            if " " in col and col in text and f"`{col}`" not in text:
                hints.append(f"a column whose name has a space is written in backticks: `{col}`")
    return (": " + "; ".join(dict.fromkeys(hints))) if hints else ""


def text_columns(registry: LFRegistry) -> list[str]:
    """Columns that declarative text LFs (keyword, regex, lexicon) read as strings."""
    cols = {lf.spec["field"] for lf in registry.lfs if getattr(lf, "spec", None) and "field" in lf.spec}
    return sorted(cols)


def _few_row_groups(df: DataFrame, cores: int) -> bool:
    """True when ``df`` reads fewer than ``cores`` local Parquet files holding fewer than ``cores`` row groups in
    all (from their footers); False when it cannot tell (other formats split by bytes, remote files are left)."""
    try:
        files = df.inputFiles()
    except Exception:  # noqa: BLE001 - not a file source (a table of another catalog, an in-memory frame)
        return False
    if not files or len(files) >= cores:
        return False
    groups = 0
    for uri in files:
        meta = footer(uri) if is_local_path(uri) and uri.endswith(".parquet") else None
        if meta is None:
            return False
        groups += meta.num_row_groups
    return groups < cores


def check_lf_source(source: Source, registry: LFRegistry) -> int:
    """:func:`~jobs.delta_io.sources.check_source` for ``registry``'s LFs (the columns they read, text
    columns as strings, ids unique and not null): a source scored on but never applied to, such as
    ``evaluation:``, is checked as apply checks its own, its model LFs scoring a few rows on the driver first
    (:func:`~jobs.runtime.lf_sources.check_models`: a model that cannot score fails in seconds, in lakelabel's
    words, not as an executor's traceback). Returns the row count."""
    rows = check_source(source, text_columns=text_columns(registry), required_columns=required_columns(registry.lfs),
                        lfs=registry.lfs)
    lf_sources.check_models(source, registry.lfs)
    return rows


def compute_votes(
    source: Source, registry: LFRegistry, *, batch_size: int = 10_000, lf_timeout_seconds: float = 0.0,
    rows_done: Any = None, masks_folder: str | None = None, mask_tasks: Any = None,
) -> DataFrame:
    """The votes of every LF on every row, as a lazy long-format DataFrame (nothing runs yet).

    Columns: ``row_id, lf_name, lf_version, vote, error, error_kind`` (see
    :func:`lf_library.apply.votes_schema`). ``lf_timeout_seconds``: each LF's budget on one batch
    (:mod:`lf_library.budget`; 0: none). ``rows_done``: a Spark accumulator that counts the rows
    the LFs ran on (progress lines). ``masks_folder``, ``mask_tasks``: the rows' masks written on the way,
    as :func:`vote_function` writes them.
    """
    prepared, apply_partition, schema = vote_function(source, registry, batch_size=batch_size,
                                                      lf_timeout_seconds=lf_timeout_seconds, rows_done=rows_done,
                                                      masks_folder=masks_folder, mask_tasks=mask_tasks)
    return prepared.mapInArrow(apply_partition, schema)


def vote_function(
    source: Source, registry: LFRegistry, *, batch_size: int = 10_000, lf_timeout_seconds: float = 0.0,
    rows_done: Any = None, run_id: str | None = None, masks_folder: str | None = None, mask_tasks: Any = None,
) -> tuple[DataFrame, Any, Any]:
    """``(rows, function, schema)``: :func:`compute_votes` is ``rows.mapInArrow(function, schema)``.

    With ``run_id``, the function adds the votes table's ``run_id`` column. Passed to a Delta
    write as its ``transform``, the LFs run in the task that writes the votes (one Python pass).
    With ``masks_folder``, the function also writes each row's vote bitmask and gold class id there
    (:mod:`jobs.apply_masks`; needs every LF's votes to fit one mask), or with ``mask_tasks`` (a
    :class:`jobs.task_masks.TaskMasks`) each task's mask and gold class id (each task's votes fit one).
    """
    df, id_col = source.df, source.id_column
    lfs = registry.lfs
    # Rows per Arrow batch handed to the LFs (read when the plan runs).
    df.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))
    needed = required_columns(lfs)
    columns = list(df.columns) if needed is None else [c for c in df.columns if c in needed]
    # A column no LF names may have a '.' in its name, which Spark reads as a struct field, and so does pyspark's
    # mapInArrow when it names its input columns: such a column travels under a placeholder name and gets its own
    # name back in the batches (a drill, session 26: "SQL LF  does not compile against the source").
    dotted = {c: f"__dotted_{i}" for i, c in enumerate(columns) if "." in c}
    undotted = {v: k for k, v in dotted.items()}
    select = [by_name(id_col).alias("__row_id")] + [by_name(c).alias(dotted.get(c, c)) for c in columns if c != id_col]
    if id_col in columns:
        select.append(by_name(id_col))
    tasks_layout = None
    if masks_folder is not None and mask_tasks is not None:
        tasks_layout = (mask_tasks.columns, mask_tasks.classes, mask_tasks.gold_tasks)
        select.append((mask_tasks.gold if mask_tasks.gold_tasks else F.lit(-1).cast("int")).alias(_GOLD))
    elif masks_folder is not None:
        gold = gold_ids(source, tuple(registry.label_space)) if source.gold_column else F.lit(-1).cast("int")
        select.append(gold.alias(_GOLD))
    precomputed = {}
    df, joined = lf_sources.join_lf_tables(source, lfs)
    spark_columns = {}
    for j, lf in enumerate(lfs):
        if runs_on_spark(lf):
            alias = f"__lf_sql_{j}"
            precomputed[lf.name] = alias
            column = lf.spark_column(F.col(joined[lf.name])) if lf.name in joined else lf.spark_column()
            spark_columns[lf.name] = column
            select.append(column.alias(alias))
    try:
        with quiet_analysis_errors():
            prepared = df.select(*select)
    except AnalysisException as err:
        conditions = {lf.name: lf.spec.get("condition", "") for lf in lfs if lf.name in spark_columns}
        raise ConfigError(spark_lf_error(df, spark_columns, err, "LF", "the LF's condition", conditions)) from None
    # LFs are CPU-bound: a source with fewer input splits than cores (one small file) would run on one core, so
    # spread it out first. So would fewer Parquet row groups than cores, whatever the splits: Spark cuts a file
    # into byte ranges, but only the one holding a row group's middle reads it (one pandas-written file of 1M
    # rows, one row group: 3 splits, one of them with every row).
    cores = df.sparkSession.sparkContext.defaultParallelism
    if prepared.rdd.getNumPartitions() < cores or _few_row_groups(df, cores):
        prepared = prepared.repartition(cores)
    id_type = to_arrow_type(df.schema[id_col].dataType)
    schema = votes_schema(id_type) if run_id is None else votes_table_schema(id_type)
    spark_schema = from_arrow_schema(schema)
    payload = pickle_lfs((tuple(lfs), precomputed, registry.cardinality), lfs)
    broadcast = df.sparkSession.sparkContext.broadcast(payload)

    def apply_partition(batches):
        lfs_, pre, k = cloudpickle.loads(broadcast.value)
        masks = apply_masks.PartitionMasks(masks_folder, k, tasks_layout) if masks_folder is not None else None
        try:
            yield from vote_batches(batches, lfs_, pre, k, masks)
            if masks is not None:
                masks.finish()
        finally:
            if masks is not None:
                masks.abort()  # nothing left to do after finish(); removes an unfinished file

    def vote_batches(batches, lfs_, pre, k, masks):
        budget = LFBudget(lf_timeout_seconds)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            row_ids = batch.column("__row_id")
            columns = batch.select([c for c in batch.schema.names if c not in ("__row_id", _GOLD)])
            if dotted:
                columns = columns.rename_columns([undotted.get(n, n) for n in columns.schema.names])
            if budget.enabled:
                def evaluate(some):
                    return evaluate_within_budget(some, columns, budget, precomputed=pre, cardinality=k)
            else:
                def evaluate(some):
                    return evaluate_batch(some, columns, precomputed=pre, cardinality=k)
            # Many keyword LFs of a field: one matcher pass for all of them (same votes; lf_library.fused).
            votes = evaluate_fused(lfs_, columns, cardinality=k, evaluate=evaluate)
            # By LF: the votes table is partitioned by LF, and its writer gets long runs of one LF.
            out = to_long_votes(lfs_, row_ids, votes, order="lf")
            if masks is not None:
                masks.add(row_ids, votes.votes, batch.column(_GOLD))
            if rows_done is not None:
                rows_done.add(batch.num_rows)
            if out.num_rows:
                if run_id is not None:
                    out = pa.RecordBatch.from_arrays(
                        [*out.columns, pa.repeat(pa.scalar(run_id, pa.string()), out.num_rows)], schema=schema)
                yield out

    return prepared, apply_partition, spark_schema


_GOLD = "__gold"  # the gold class id column the LFs do not see (row masks only)

def pickle_lfs(payload: Any, lfs: Sequence[LabelingFunction]) -> bytes:
    """cloudpickle ``payload`` for the executors, with the users' LF modules inside it.

    cloudpickle, not pickle: a decorated LF's function is shadowed in its module by the LF
    object, so it must travel by value (LFs defined in notebooks live in ``__main__`` and do
    anyway). The top-level packages of the modules that define the LFs (other than lakelabel's
    own, which executors import from the installed or shipped code) are pickled by value too,
    so a team's LF package needs to exist only where the job is submitted. Still imported on
    the executors: helpers from other packages, classes of objects passed as resources, and
    files the LFs read at run time.
    """
    roots = set()
    for lf in lfs:
        for module in (getattr(lf.f, "__module__", None), type(lf).__module__):
            root = (module or "").split(".")[0]
            if root and root not in OWN_PACKAGES and root != "__main__" and root in sys.modules:
                roots.add(root)
    already = set(cloudpickle.list_registry_pickle_by_value())
    registered = [root for root in sorted(roots) if root not in already]
    try:
        for root in registered:
            cloudpickle.register_pickle_by_value(sys.modules[root])
        try:
            return cloudpickle.dumps(payload)
        except (pickle.PicklingError, TypeError) as err:
            if not registered:
                raise
            # A module global that cannot be pickled (a lock, a client): fall back to importing
            # the modules on the executors, which then need them installed.
            log.warning("LF modules %s cannot travel by value (%s); executors will import them instead",
                        ", ".join(registered), err)
    finally:
        for root in registered:
            cloudpickle.unregister_pickle_by_value(sys.modules[root])
    return cloudpickle.dumps(payload)
