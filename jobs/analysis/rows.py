"""The one row-level pass of ``lakelabel analyze``: each source row scored once, on executors.

Per row: the vote pattern (from the votes table, as :mod:`jobs.aggregate` builds it), the gold
class, the labels table's probabilities and hard label, and, computed in Arrow batches on the
executors, the tie shares of the label model and of majority vote (:func:`labelmodel.tie_shares`,
the tie rule of every lakelabel accuracy), majority vote's hard label, how many LFs voted and
how many classes they voted, and a bitmask of the slices the row is in. Slices are evaluated
while the source is read, so only the bitmask (not the text) travels through the joins. Every
statistic of the analysis is a Spark aggregation over this frame; only example rows are collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_type
from pyspark.errors import AnalysisException

from jobs import delta_io
from jobs.delta_io.sources import Source, gold_ids
from jobs.aggregate import pattern_frame
from jobs.analysis.inputs import AnalysisInputs
from jobs.apply_lfs import pickle_lfs
from jobs.lf_pass import quiet_analysis_errors, spark_lf_error
from lf_library.errors import ConfigError, InputDataError
from lf_library.slicing import SlicingFunction, evaluate_slices

MAX_SLICES = 62  # slice membership is a bitmask in one long
_SLICE_FIELDS = [pa.field("slices", pa.int64()), pa.field("bad_slices", pa.int64()), pa.field("problem", pa.string())]


def by_column(i: int) -> str:
    """Name of the ``i``-th ``analysis.coverage_by`` column in :func:`scored_rows`."""
    return f"__by_{i}"


def scored_schema(row_id_type: pa.DataType, extra: Sequence[pa.Field]) -> pa.Schema:
    """Columns of :func:`scored_rows`."""
    return pa.schema([
        pa.field("row_id", row_id_type),
        pa.field("gold", pa.int32()),
        pa.field("label", pa.int32()),
        pa.field("confidence", pa.float64()),
        pa.field("pattern", pa.list_(pa.int32())),
        pa.field("n_votes", pa.int32()),
        pa.field("n_classes", pa.int32()),
        pa.field("lm", pa.list_(pa.float64())),
        pa.field("mv", pa.list_(pa.float64())),
        pa.field("mv_label", pa.int32()),
        *_SLICE_FIELDS,
        *extra,
    ])


def slice_batch(
    batch: pa.RecordBatch, *, slices: Sequence[SlicingFunction], precomputed: dict[str, str],
    source_columns: Sequence[str], schema: pa.Schema,
) -> pa.RecordBatch:
    """Source rows -> ``row_id, gold, slices, bad_slices, problem, __by_*`` (runs on executors).

    Source columns arrive as ``__src_<i>`` (``source_columns[i]``), so no source column can clash
    with the job's own; slices see them under their own names. A slice that raises or returns a
    non-boolean sets its bit in ``bad_slices`` on the batch's first row, with a description in
    ``problem``.
    """
    b = batch.num_rows
    names = list(source_columns) + list(precomputed.values())
    arrays = [batch.column(f"__src_{i}") for i in range(len(source_columns))]
    arrays += [batch.column(c) for c in precomputed.values()]
    view = pa.RecordBatch.from_arrays(arrays, names=names) if names else pa.RecordBatch.from_pydict(
        {"__rows": pa.nulls(b)})
    masks, problems = evaluate_slices(slices, view, precomputed)
    weights = np.left_shift(np.int64(1), np.arange(len(slices), dtype=np.int64))
    bits = masks.astype(np.int64) @ weights if slices else np.zeros(b, dtype=np.int64)
    bad_bits = np.zeros(b, dtype=np.int64)
    problem: list[str | None] = [None] * b
    for j, (bad, example) in enumerate(problems):
        if bad:
            bad_bits[0] |= np.int64(1) << j
            problem[0] = (problem[0] + "; " if problem[0] else "") + f"{slices[j].name}:{bad}:{example}"
    by = [f for f in schema.names if f.startswith("__by_")]
    columns = [batch.column("row_id"), batch.column("gold"), pa.array(bits, pa.int64()),
               pa.array(bad_bits, pa.int64()), pa.array(problem, pa.string()), *[batch.column(f) for f in by]]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def score_batch(batch: pa.RecordBatch, *, k: int, m: int, schema: pa.Schema) -> pa.RecordBatch:
    """One Arrow batch of joined rows -> one batch of :func:`scored_schema` (runs on executors)."""
    from labelmodel import MajorityLabelVoter, tie_shares

    b = batch.num_rows
    pattern = batch.column("pattern")
    offsets = pattern.offsets.to_numpy()
    codes = pattern.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]].astype(np.int64)
    lengths = np.diff(offsets)
    rows = np.repeat(np.arange(b), lengths)
    L = np.full((b, m), -1, dtype=np.int64)
    L[rows, codes // k] = codes % k
    counts = np.zeros((b, k), dtype=np.int64)
    np.add.at(counts, (rows, codes % k), 1)
    mv = tie_shares(MajorityLabelVoter(cardinality=k).predict_proba(L))
    top = counts.max(axis=1)
    unique = ((counts == top[:, None]).sum(axis=1) == 1) & (top > 0)
    mv_label = np.where(unique, counts.argmax(axis=1), -1)
    probs_col = batch.column("probabilities")
    p_off = probs_col.offsets.to_numpy()
    probs = probs_col.values.to_numpy(zero_copy_only=False)[p_off[0]:p_off[-1]].reshape(b, k)
    lm = tie_shares(probs)
    columns = [
        batch.column("row_id"), batch.column("gold"), batch.column("label"), batch.column("confidence"), pattern,
        pa.array(lengths, pa.int32()),
        pa.array((counts > 0).sum(axis=1), pa.int32()),
        pa.FixedSizeListArray.from_arrays(pa.array(lm.ravel(), pa.float64()), k).cast(pa.list_(pa.float64())),
        pa.FixedSizeListArray.from_arrays(pa.array(mv.ravel(), pa.float64()), k).cast(pa.list_(pa.float64())),
        pa.array(mv_label, pa.int32()),
        *[batch.column(f.name) for f in schema if f.name in ("slices", "bad_slices", "problem")
          or f.name.startswith("__by_")],
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _sliced_source(
    spark: Any, source: Source, label_space: Sequence[str], slices: Sequence[SlicingFunction],
    coverage_by: Sequence[str],
) -> DataFrame:
    """``row_id, gold, slices, bad_slices, problem, __by_*``: one pass over the source."""
    precomputed: dict[str, str] = {}
    sql_cols = []
    needed: set[str] = set(coverage_by)
    for j, sf in enumerate(slices):
        if sf.kind == "sql":
            precomputed[sf.name] = f"__slice_{j}"
            sql_cols.append(sf.spark_column().alias(f"__slice_{j}"))
        else:
            needed.update(sf.fields if sf.fields is not None else source.df.columns)
    unknown = sorted(c for c in needed if c not in source.df.columns)
    if unknown:  # name who reads each, as LF errors name the LF
        readers = [(f"slice {sf.name!r}", sf.fields or ()) for sf in slices] + [("analysis.coverage_by", coverage_by)]
        bad = [(who, miss) for who, cols in readers if (miss := [c for c in cols if c not in source.df.columns])]
        raise ConfigError(f"{' and '.join(f'{who} reads column(s) {miss}' for who, miss in bad)}, not in "
                          f"{source.info.path} (its columns are: {', '.join(source.df.columns)}); fix the slice's "
                          f"fields= (or analysis.coverage_by) to name columns of the source")
    side_cols = [c for c in source.df.columns if c in needed]
    gold = gold_ids(source, tuple(label_space)) if source.gold_column else F.lit(-1).cast("int")
    by = [F.col(c).alias(by_column(i)) for i, c in enumerate(coverage_by)]
    if not slices:
        return source.df.select(F.col(source.id_column).alias("row_id"), gold.alias("gold"),
                                F.lit(0).cast("long").alias("slices"), F.lit(0).cast("long").alias("bad_slices"),
                                F.lit(None).cast("string").alias("problem"), *by)
    try:
        with quiet_analysis_errors():
            side = source.df.select(F.col(source.id_column).alias("row_id"), gold.alias("gold"),
                                    *[F.col(c).alias(f"__src_{i}") for i, c in enumerate(side_cols)], *sql_cols, *by)
    except AnalysisException as err:
        sql = {sf.name: sf.spark_column() for sf in slices if sf.kind == "sql"}
        raise ConfigError(spark_lf_error(source.df, sql, err, "slice", "its condition")) from None
    id_type = to_arrow_type(source.df.schema[source.id_column].dataType)
    by_fields = [pa.field(by_column(i), to_arrow_type(source.df.schema[c].dataType)) for i, c in enumerate(coverage_by)]
    schema = pa.schema([pa.field("row_id", id_type), pa.field("gold", pa.int32()), *_SLICE_FIELDS, *by_fields])
    payload = spark.sparkContext.broadcast(pickle_lfs((tuple(slices), precomputed), slices))

    def slice_partition(batches):
        from pyspark import cloudpickle

        slices_, pre = cloudpickle.loads(payload.value)
        for batch in batches:
            if batch.num_rows:
                yield slice_batch(batch, slices=slices_, precomputed=pre, source_columns=side_cols, schema=schema)

    return side.mapInArrow(slice_partition, from_arrow_schema(schema))


def _with_gold_table(sliced: DataFrame, inputs: AnalysisInputs) -> DataFrame:
    """Gold from the gold table's ``test`` split where a row has one, else the source's gold column."""
    if inputs.gold_test is None:
        return sliced
    test = F.broadcast(inputs.gold_test.select(F.col("row_id").alias("__gold_id"), F.col("label").alias("__gold")))
    joined = sliced.join(test, F.col("row_id").cast("string") == F.col("__gold_id"), "left")
    return joined.select(*[F.coalesce("__gold", "gold").cast("int").alias("gold") if c == "gold" else c
                           for c in sliced.columns])


def scored_rows(
    spark: Any, inputs: AnalysisInputs, slices: Sequence[SlicingFunction], coverage_by: Sequence[str], io: Any = None,
    rows_done: Any = None,
) -> DataFrame:
    """The lazy per-row frame described in the module docstring (one row per source row).

    ``rows_done``: a Spark accumulator the scoring tasks add their row counts to (progress lines).
    """
    io = io or delta_io.delta_io(spark)
    if len(slices) > MAX_SLICES:
        raise ConfigError(f"{len(slices)} slices are configured; analyze supports at most {MAX_SLICES}: split "
                          f"slices.modules across configs")
    source, k, m = inputs.source, len(inputs.label_space), len(inputs.lf_names)
    sliced = _with_gold_table(_sliced_source(spark, source, inputs.label_space, slices, coverage_by), inputs)
    table = inputs.labels(spark, io)
    labels = table.select("row_id", "probabilities", F.coalesce("label", F.lit(-1)).cast("int").alias("label"),
                          "confidence")
    if inputs.codes_match and "vote_codes" in table.columns:
        # The labels carry each row's vote pattern: one join, the votes are not grouped again.
        coded = table.select("row_id", "probabilities", F.coalesce("label", F.lit(-1)).cast("int").alias("label"),
                             "confidence", F.col("vote_codes").alias("pattern"))
        joined = sliced.join(coded, "row_id", "left").withColumn(
            "pattern", F.coalesce(F.col("pattern"), F.array().cast("array<int>")))
    else:  # labels written before they carried vote_codes, coded with other LFs, or one task's labels
        votes = io.read_table(spark, inputs.votes_path, version=inputs.votes_version)
        joined = pattern_frame(votes, sliced, inputs.lf_names, k).join(labels, "row_id", "left")
    id_type = to_arrow_type(source.df.schema[source.id_column].dataType)
    by_fields = [pa.field(by_column(i), to_arrow_type(source.df.schema[c].dataType)) for i, c in enumerate(coverage_by)]
    schema = scored_schema(id_type, by_fields)
    prob_default = F.array_repeat(F.lit(1.0 / k), k)  # a source row without a label row (not expected)
    prepared = joined.select(
        "row_id", "gold", F.coalesce("label", F.lit(-1)).cast("int").alias("label"),
        F.coalesce("confidence", F.lit(0.0)).alias("confidence"), "pattern",
        F.coalesce("probabilities", prob_default).alias("probabilities"),
        "slices", "bad_slices", "problem", *[f.name for f in by_fields],
    )

    def score_partition(batches):
        for batch in batches:
            if batch.num_rows:
                if rows_done is not None:
                    rows_done.add(batch.num_rows)
                yield score_batch(batch, k=k, m=m, schema=schema)

    return prepared.mapInArrow(score_partition, from_arrow_schema(schema))


def check_slice_problems(scored: DataFrame, slices: Sequence[SlicingFunction]) -> None:
    """Raise :class:`InputDataError` naming the first slice that raised or returned a non-boolean."""
    if not slices:
        return
    bad = scored.where(F.col("bad_slices") != 0).select("bad_slices", "problem").limit(1).collect()
    if not bad:
        return
    for entry in (bad[0]["problem"] or "").split("; "):
        name, count, example = entry.split(":", 2)
        raise InputDataError(
            f"slicing function {name!r} {example} on {count} row(s) of a batch; a slicing function must return "
            f"True or False for every row: fix it in its module (slices.modules)"
        )
