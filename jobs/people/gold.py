"""The gold table: labels people gave, kept with their history (``lakelabel gold import``).

One row per label given: ``row_id`` (the source id, as a string), ``label`` (class id) and
``label_name``, ``annotator``, ``annotated_at``, ``split`` (``dev`` or ``test``), ``origin`` (the
file, or the Label Studio project/task/annotation), ``task_id``, ``note``, ``import_id`` (the
SHA-256 of the imported file) and ``imported_at``.

* An import is one Delta commit (an append with the Delta app transaction
  ``lakelabel.gold/<file hash>``), validated in full before anything is written: importing the
  same file again adds nothing.
* A row labeled again keeps its history; its current label is the latest (``annotated_at``, then
  ``imported_at``). Rows whose annotators' latest labels differ are conflicts: counted and
  reported by every import, never an error.
* The split of a row is ``dev`` or ``test`` by a hash of its id (``gold.dev_fraction``) unless
  the file or ``--split`` gives it, and never changes: ``test`` rows are used only to measure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from jobs import delta_io
from jobs.runtime import signals
from jobs.runtime.config import PipelineConfig
from jobs.delta_io.sources import load_source
from jobs.people.files import FileFormat, GoldFile, read_gold_file
from lf_library.errors import ConfigError, InputDataError

log = logging.getLogger(__name__)

__all__ = ["GOLD_META_KEY", "SPLITS", "GoldSets", "gold_schema", "assign_split", "checked_records", "label_space_of",
           "read_gold", "current_gold", "import_file", "gold_sets", "run", "status", "status_counts",
           "status_needs_spark"]  # fmt: skip

GOLD_META_KEY = "lakelabel.gold"
SPLITS = ("dev", "test")
_EXAMPLES = 5


def gold_schema() -> T.StructType:
    """Schema of the gold table."""
    return T.StructType([
        T.StructField("row_id", T.StringType(), False),
        T.StructField("label", T.IntegerType(), False),
        T.StructField("label_name", T.StringType(), False),
        T.StructField("annotator", T.StringType(), False),
        T.StructField("annotated_at", T.TimestampType(), False),
        T.StructField("split", T.StringType(), False),
        T.StructField("origin", T.StringType(), False),
        T.StructField("task_id", T.StringType(), True),
        T.StructField("note", T.StringType(), True),
        T.StructField("import_id", T.StringType(), False),
        T.StructField("imported_at", T.TimestampType(), False),
    ])  # fmt: skip


def assign_split(row_id: str, dev_fraction: float) -> str:
    """``dev`` or ``test`` for ``row_id``, from a hash of it: the same id always lands in the same split."""
    h = int.from_bytes(hashlib.sha256(f"lakelabel.gold.split:{row_id}".encode()).digest()[:8], "big")
    return "dev" if h / 2**64 < dev_fraction else "test"


def checked_records(cfg: PipelineConfig, gf: Any, annotator: str | None,
                    space: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """``gf``'s labeled rows checked without Spark: some row has a label, each label is in the label
    space (``space``, default :func:`label_space_of`; its class id then), each split is dev or test,
    no annotator gives one row two labels. Each record gets its annotator (the file's, else
    ``annotator``, else ``unknown``)."""
    if not gf.records and gf.format == "label-studio":
        raise InputDataError(
            f"{gf.path} has no submitted label ({gf.unlabeled} task(s) not annotated yet or skipped); label the "
            f"tasks in Label Studio, export the project again and import that export"
        )
    if not gf.records:
        raise InputDataError(
            f"{gf.path} has no labeled rows ({gf.unlabeled} row(s) with an empty label); fill the label column "
            f"(a class name or id) and import again"
        )
    space = label_space_of(cfg) if space is None else space
    for r in gf.records:
        r["annotator"] = r["annotator"] or annotator or "unknown"
    _resolve_labels(gf.records, space, gf.path)
    for r in gf.records:
        if r["split"] and r["split"] not in SPLITS:
            raise InputDataError(f"{gf.path}, {r['where']}: split {r['split']!r} is not dev or test; fix or empty it")
    return _check_duplicates(gf.records, gf.path)


def label_space_of(cfg: PipelineConfig) -> tuple[str, ...]:
    """The label space: ``lfs.label_space``, else the LF modules' ``LABEL_SPACE`` (the modules only: a
    declared LF, a model LF say, is not built for it)."""
    if cfg.lfs.label_space:
        return tuple(cfg.lfs.label_space)
    if not cfg.lfs.modules:
        raise ConfigError("lfs.label_space is not set and no LF module (lfs.modules) defines LABEL_SPACE; set "
                          "lfs.label_space to the class names")
    from lf_library import load_registry

    return tuple(load_registry(cfg.lfs.modules).label_space)


def read_gold(spark: SparkSession, cfg: PipelineConfig, io: Any = None) -> DataFrame | None:
    """Every label ever imported (the full history), or None when there is no gold table yet."""
    io = io or delta_io.delta_io(spark, cfg.tables.delta_io)
    path = cfg.table_path("gold")
    return io.read_table(spark, path) if io.table_exists(path) else None


def current_gold(spark: SparkSession, cfg: PipelineConfig, io: Any = None, *, split: str | None = None) -> DataFrame | None:
    """``row_id, label, label_name, split, annotator`` of each row's latest label; None without a gold table.

    ``label`` is the class id of ``label_name`` in the config's label space, whatever id it had when it was
    imported: reordering ``lfs.label_space`` keeps the gold labels' meaning (labels of a class the space no
    longer has are left out, with a warning)."""
    history = read_gold(spark, cfg, io)
    if history is None:
        return None
    history = _ids_by_name(history, label_space_of(cfg), cfg.table_path("gold"))  # null: a dropped class
    order = Window.partitionBy("row_id").orderBy(F.col("annotated_at").desc(), F.col("imported_at").desc(),
                                                 F.col("annotator").desc())  # fmt: skip
    latest = history.withColumn("_r", F.row_number().over(order)).where(F.col("_r") == 1)
    # A row's split never changes; its first label decides it.
    first = history.groupBy("row_id").agg(F.min_by("split", F.struct("imported_at", "annotated_at")).alias("_split"))
    out = latest.join(first, "row_id").where(F.col("label").isNotNull()).select(
        "row_id", "label", "label_name", F.col("_split").alias("split"), "annotator")  # fmt: skip
    return out if split is None else out.where(F.col("split") == split)


def _ids_by_name(history: DataFrame, space: Sequence[str], table: str) -> DataFrame:
    """``history`` with each label's id taken from its class name in ``space`` (one small Spark job: the
    distinct (id, name) pairs of the gold table)."""
    pairs = {(r["label"], r["label_name"]) for r in history.select("label", "label_name").distinct().collect()}
    space = list(space)
    gone = sorted({name for _, name in pairs} - set(space))
    if gone:  # a row whose latest label is of such a class is left out, not read as its label before
        log.warning("gold table %s: labels of class(es) %s, which the label space %s no longer has, are left out; "
                    "put them back in lfs.label_space to use them", table, gone, space)
    elif all(space.index(name) == label for label, name in pairs):
        return history
    log.info("gold table %s: labels read by class name (the label space changed since they were imported)",
             table)
    ids = F.create_map(*[x for i, name in enumerate(space) for x in (F.lit(name), F.lit(i))])
    return history.withColumn("label", ids[F.col("label_name")].cast("int"))


@dataclass(frozen=True)
class GoldSets:
    """Votes and current gold labels of the gold rows, per split: ``(L [n, m], Y [n])`` each."""

    dev: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray] | None

    def to_npz(self, path: str) -> None:
        arrays = {}
        for name in SPLITS:
            pair = getattr(self, name)
            if pair is not None:
                arrays[f"{name}_L"], arrays[f"{name}_Y"] = pair
        np.savez(path, **arrays)

    @classmethod
    def from_npz(cls, path: str) -> GoldSets:
        with np.load(path, allow_pickle=False) as data:
            pairs = {name: (data[f"{name}_L"], data[f"{name}_Y"]) if f"{name}_L" in data else None for name in SPLITS}
        return cls(**pairs)


def gold_sets(rows: DataFrame, current: DataFrame, lf_names: Sequence[str], cardinality: int) -> GoldSets:
    """Label matrices of the gold rows from :func:`jobs.aggregate.pattern_frame` rows, on Spark.

    Only counts per (vote pattern, gold label, split) reach the driver, as for the training
    statistics; gold rows missing from ``rows`` (no longer in the source) are left out.
    """
    m, k = len(lf_names), cardinality
    grouped = (
        rows.select(F.col("row_id").cast("string").alias("row_id"), "pattern")
        .join(current.select("row_id", "label", "split"), "row_id")
        .groupBy("pattern", "label", "split")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    out: dict[str, Any] = {}
    for name in SPLITS:
        part = [r for r in grouped if r["split"] == name]
        if not part:
            out[name] = None
            continue
        counts = np.array([r["n"] for r in part], dtype=np.int64)
        lines = np.full((len(part), m), -1, dtype=np.int64)
        for i, r in enumerate(part):
            codes = np.asarray(r["pattern"], dtype=np.int64)
            lines[i, codes // k] = codes % k
        labels = np.array([r["label"] for r in part], dtype=np.int64)
        out[name] = (np.repeat(lines, counts, axis=0), np.repeat(labels, counts))
    return GoldSets(**out)


def _resolve_labels(records: list[dict[str, Any]], space: tuple[str, ...], path: str) -> None:
    bad = []
    for r in records:
        raw = r["label"]
        # A class id written as a decimal ("1.0": pandas writes a column of ids with blanks that way)
        whole = raw.split(".")[0] if re.fullmatch(r"\d+\.0+", raw) else raw
        if raw in space:
            r["label_id"] = space.index(raw)
        elif whole.isdigit() and int(whole) < len(space):
            r["label_id"] = int(whole)
        else:
            bad.append(r)
        if r.get("label_id") is not None:
            r["label_name"] = space[r["label_id"]]
    if bad:
        first = bad[0]
        folded = {n.casefold(): n for n in space}
        near = folded.get(first["label"].strip().casefold())  # 'Spam', ' spam': a name written another way
        hint = f" (class names are matched exactly: {first['label']!r} would be {near!r})" if near else ""
        raise InputDataError(
            f"{path}, {first['where']}: label {first['label']!r} is not in the label space "
            f"({', '.join(f'{i}={n}' for i, n in enumerate(space))}){hint}; {len(bad)} row(s) have such labels. Use a "
            f"class name or id of that label space and import again; nothing was imported"
        )


def _timestamp(value: str, where: str, path: str, now: datetime) -> datetime:
    if not value:
        return now
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputDataError(
            f"{path}, {where}: annotated_at {value!r} is not a date-time; write ISO 8601 (2026-01-31T12:00:00Z) "
            f"or leave it empty for the import time; nothing was imported"
        ) from None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _check_ids(spark: SparkSession, cfg: PipelineConfig, records: list[dict[str, Any]], path: str, io: Any) -> None:
    source = load_source(spark, cfg.source, io=io)
    ids = spark.createDataFrame([(i,) for i in sorted({r["row_id"] for r in records})], "row_id string")
    known = source.df.select(F.col(source.id_column).cast("string").alias("row_id"))
    missing = ids.join(known, "row_id", "left_anti")
    n = missing.count()
    if n:
        examples = [r["row_id"] for r in missing.limit(_EXAMPLES).collect()]
        where = next(r["where"] for r in records if r["row_id"] == examples[0])
        decimal = any(re.fullmatch(r"-?\d+\.0+", e) for e in examples)
        hint = (f" The source's ids are {source.df.schema[source.id_column].dataType.simpleString()}s and these are "
                "written as decimals (a spreadsheet or pandas wrote a column with blanks that way): write them "
                "without the '.0'." if decimal else "")
        raise InputDataError(
            f"{path}: {n} row id(s) are not in the source {source.description} (column {source.id_column!r}), "
            f"e.g. {where}; ids: {', '.join(map(repr, examples))}.{hint} Remove those rows or fix their ids (gold "
            f"labels must name source rows); nothing was imported"
        )


def _check_duplicates(records: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    out, repeated = [], 0
    for r in records:
        key = (r["row_id"], r["annotator"])
        prior = seen.get(key)
        if prior is None:
            seen[key] = r
            out.append(r)
        elif prior["label_id"] != r["label_id"]:
            raise InputDataError(
                f"{path}: row_id {r['row_id']} is labeled {prior['label_name']!r} ({prior['where']}) and "
                f"{r['label_name']!r} ({r['where']}) by the same annotator {r['annotator']!r}; keep one of them "
                f"(or give each label its annotator); nothing was imported"
            )
        else:
            repeated += 1
    if repeated:
        log.info("gold import: %d row(s) of %s repeat an earlier row's id, annotator and label; each counts once",
                 repeated, path)
    return out


def _conflicts(history: Sequence[tuple[str, str, Any, datetime]]) -> dict[str, dict[str, Any]]:
    """Rows whose annotators' latest labels differ: ``row_id -> {annotator: label}``.

    ``history``: ``(row_id, annotator, label, annotated_at)`` in import order (a tie in
    ``annotated_at`` goes to the later import); the label is an id or a name.
    """
    latest: dict[str, dict[str, tuple[datetime, Any]]] = {}
    for row_id, annotator, label, at in history:
        per = latest.setdefault(row_id, {})
        if annotator not in per or at >= per[annotator][0]:
            per[annotator] = (at, label)
    return {r: {a: v[1] for a, v in per.items()} for r, per in latest.items() if len({v[1] for v in per.values()}) > 1}


def import_file(
    spark: SparkSession,
    cfg: PipelineConfig,
    path: str,
    *,
    run_id: str,
    fmt: FileFormat = "auto",
    annotator: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Validate an annotation file in full, then append its labels to the gold table in one commit.

    Parameters
    ----------
    path : str
        CSV, Parquet file or folder, Delta table, or Label Studio JSON export.
    fmt : {"auto", "csv", "parquet", "delta", "label-studio"}
    annotator : str, optional
        For rows that name none (default ``"unknown"``).
    split : {"dev", "test"}, optional
        For rows that give none and are new to the gold table (default: by a hash of the id).

    Returns
    -------
    dict
        The command summary: ``tables.gold``, ``counts`` (``in_file``, ``imported``, ``unlabeled``,
        ``dev``, ``test``, ``relabeled``, ``conflicts``), ``conflict_examples``, ``skipped``.

    Raises
    ------
    InputDataError
        Unreadable file, missing column, label outside the label space, unknown row ids, one
        annotator giving two labels to a row, a split that contradicts the table: nothing is written.
    """
    started = time.perf_counter()
    if split is not None and split not in SPLITS:
        raise ConfigError(f"--split {split!r} is not valid; choose dev or test")
    if not 0.0 <= cfg.gold.dev_fraction <= 1.0:
        raise ConfigError(f"gold.dev_fraction = {cfg.gold.dev_fraction} must be between 0 and 1")
    table = cfg.table_path("gold")
    gf: GoldFile = read_gold_file(path, fmt)
    summary: dict[str, Any] = {
        "run_id": run_id, "stage": "gold import", "status": "succeeded", "skipped": False,
        "file": {"path": gf.path, "format": gf.format, "sha256": gf.fingerprint},
    }  # fmt: skip
    if spark is None:  # import_needs_spark found the file's labels in a local gold table
        local = delta_io.LocalDeltaIO()
        rows, version = local.read_arrow(table, columns=_EARLIER_COLUMNS)
        earlier = _earlier_import([r for r in rows.to_pylist() if r["import_id"] in gf.fingerprints])
        if earlier is None:
            raise RuntimeError(f"gold import without Spark, but {gf.path} is not in {table}")
    else:
        io = delta_io.delta_io(spark, cfg.tables.delta_io)
        history = read_gold(spark, cfg, io)
        earlier = None if history is None else _earlier_import(
            [r.asDict() for r in history.where(F.col("import_id").isin(*gf.fingerprints)).select(*_EARLIER_COLUMNS).collect()])
        version = io.table_version(table) if earlier is not None else None
    if earlier is not None:
        log.info("gold import: %s (sha256 %s) is already in %s; nothing to add", gf.path, gf.fingerprint[:12], table)
        ignored = []
        if annotator is not None and annotator not in earlier["annotators"]:
            ignored.append(f"--annotator {annotator!r}")
        if split is not None and list(earlier["splits"]) != [split]:
            ignored.append(f"--split {split}")
        if ignored:
            at = earlier["at"].strftime("%Y-%m-%d %H:%M:%S UTC") if hasattr(earlier["at"], "strftime") else earlier["at"]
            log.warning(
                "gold import: the content of %s was imported on %s with annotator(s) %s and split(s) %s; an import "
                "is keyed on the file's content, so %s changes nothing. To relabel rows under another annotator, give "
                "the file an annotator column (or edit it) and import it again", gf.path, at,
                ", ".join(map(repr, earlier["annotators"])), ", ".join(earlier["splits"]), " and ".join(ignored))  # fmt: skip
        return {**summary, "skipped": True, "tables": {"gold": {"path": table, "version": version}},
                "counts": {"in_file": len(gf.records) + gf.unlabeled, "imported": 0}}  # fmt: skip
    space = label_space_of(cfg)
    records = checked_records(cfg, gf, annotator, space)
    _check_ids(spark, cfg, records, gf.path, io)

    now = datetime.now(timezone.utc)
    past: list[tuple[str, str, str, datetime]] = []  # labels by class name: ids move with the label space
    known_split: dict[str, str] = {}
    if history is not None:
        ids = spark.createDataFrame([(r["row_id"],) for r in records], "row_id string").distinct()
        rows = history.join(F.broadcast(ids), "row_id").select("row_id", "annotator", "label_name", "annotated_at",
                                                                 "split", "imported_at").collect()  # fmt: skip
        for r in sorted(rows, key=lambda x: (x["imported_at"], x["annotated_at"])):
            at = r["annotated_at"].replace(tzinfo=timezone.utc)
            past.append((r["row_id"], r["annotator"], r["label_name"], at))
            known_split.setdefault(r["row_id"], r["split"])
    kept = sum(1 for r in records if split and not r["split"] and known_split.get(r["row_id"], split) != split)
    if kept:
        log.warning("gold import: --split %s applies to new rows only; %d row(s) already in the gold table keep "
                    "their split (a row's split never changes)", split, kept)
    out, relabeled = [], 0
    labeled_before = {(row_id, a): label for row_id, a, label, _ in past}
    for r in records:
        at = _timestamp(r["annotated_at"], r["where"], gf.path, now)
        row_split = known_split.get(r["row_id"]) or r["split"] or split or assign_split(r["row_id"], cfg.gold.dev_fraction)
        if r["split"] and r["row_id"] in known_split and r["split"] != known_split[r["row_id"]]:
            raise InputDataError(
                f"{gf.path}, {r['where']}: split {r['split']!r}, but the gold table has this row in "
                f"{known_split[r['row_id']]!r}; a row's split never changes (test rows must not leak into fitting): "
                f"empty the split cell; nothing was imported"
            )
        prior = labeled_before.get((r["row_id"], r["annotator"]))
        relabeled += prior is not None and prior != r["label_name"]
        out.append((r["row_id"], r["label_id"], r["label_name"], r["annotator"], at, row_split, r["origin"],
                    r["task_id"] or None, r["note"] or None, gf.fingerprint, now))  # fmt: skip
    conflicts = _conflicts(past + [(o[0], o[3], o[2], o[4]) for o in out])
    in_file = {o[0] for o in out}
    new_conflicts = {row: labels for row, labels in conflicts.items() if row in in_file}
    counts = {
        "in_file": len(gf.records) + gf.unlabeled, "imported": len(out), "unlabeled": gf.unlabeled,
        "dev": sum(o[5] == "dev" for o in out), "test": sum(o[5] == "test" for o in out),
        "relabeled": int(relabeled), "conflicts": len(new_conflicts),
    }  # fmt: skip
    examples = [{"row_id": row, "labels": dict(labels)}
                for row, labels in sorted(new_conflicts.items())[:_EXAMPLES]]  # fmt: skip
    meta = {GOLD_META_KEY: json.dumps({**summary["file"], "counts": counts}, sort_keys=True), "lakelabel.run_id": run_id}
    result = io.write_table(
        spark.createDataFrame(out, gold_schema()).coalesce(1),
        table,
        mode="append",
        app_id=f"lakelabel.gold/{gf.fingerprint}",
        app_version=1,
        commit_metadata=meta,
        description=f"lakelabel gold import: {len(out)} label(s) from {gf.path}",
    )
    if not result.skipped:
        signals.note_commit(f"gold {table} v{result.version}")
    if new_conflicts:
        shown = "; ".join(f"{e['row_id']}: {e['labels']}" for e in examples)
        log.warning("gold import: %d row(s) where annotators disagree (the latest label counts), e.g. %s",
                    len(new_conflicts), shown)
    log.info("gold import: %d label(s) from %s into %s v%s (dev %d, test %d, %d unlabeled rows skipped)",
             len(out), gf.path, table, result.version, counts["dev"], counts["test"], gf.unlabeled)
    return {**summary, "skipped": result.skipped, "tables": {"gold": {"path": table, "version": result.version}},
            "counts": counts, "conflict_examples": examples,
            "timings_seconds": {"gold import": round(time.perf_counter() - started, 3)}}  # fmt: skip


_STATUS_COLUMNS = ("row_id", "annotator", "label_name", "annotated_at", "imported_at", "split", "import_id")


_EARLIER_COLUMNS = ("import_id", "imported_at", "annotator", "split")


def _earlier_import(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """What an earlier import of the same file left (its rows of the gold table): when, who, which splits."""
    if not rows:
        return None
    return {"at": min(r["imported_at"] for r in rows), "annotators": sorted({r["annotator"] for r in rows}),
            "splits": sorted({r["split"] for r in rows})}


def import_needs_spark(cfg: PipelineConfig, path: str, fmt: FileFormat = "auto", gf: Any = None) -> bool:
    """Whether ``gold import`` needs Spark: not for a file already in a gold table delta-rs reads
    (:func:`status_needs_spark`), which adds nothing; every other import checks ids against the source.
    ``gf``: the file as :func:`read_gold_file` read it already."""
    local, table = delta_io.LocalDeltaIO(), cfg.table_path("gold")
    if status_needs_spark(cfg) or not local.table_exists(table):
        return True
    fingerprints = (gf if gf is not None else read_gold_file(path, fmt)).fingerprints
    rows, _ = local.read_arrow(table, columns=["import_id"])
    return set(fingerprints).isdisjoint(rows.column("import_id").to_pylist())


def status_needs_spark(cfg: PipelineConfig) -> bool:
    """Whether ``gold status`` needs Spark to read the gold table.

    Not when delta-rs reads it as the jobs would (``tables.delta_io`` is not ``native``, and
    :meth:`~jobs.delta_io.LocalDeltaIO.driver_readable`): the gold table holds the labels people
    gave, small enough for the driver, and Spark's start costs more than the whole answer.
    """
    return cfg.tables.delta_io == "native" or not delta_io.LocalDeltaIO().driver_readable(cfg.table_path("gold"))


def status(spark: SparkSession | None, cfg: PipelineConfig, *, run_id: str) -> dict[str, Any]:
    """``lakelabel gold status``: current labels per split and class, annotators, history and conflicts.

    ``spark`` None reads the gold table with delta-rs (see :func:`status_needs_spark`); either
    way the history is counted on the driver by :func:`status_counts`.
    """
    table = cfg.table_path("gold")
    no_table = ConfigError(f"no gold table at {table}; import labels with `lakelabel gold import` first")
    if spark is None:
        local = delta_io.LocalDeltaIO()
        if not local.table_exists(table):
            raise no_table
        rows, version = local.read_arrow(table, columns=_STATUS_COLUMNS)
        history = rows.to_pylist()
    else:
        io = delta_io.delta_io(spark, cfg.tables.delta_io)
        frame = read_gold(spark, cfg, io)
        if frame is None:
            raise no_table
        version = io.table_version(table)
        history = [r.asDict() for r in frame.select(*_STATUS_COLUMNS).collect()]
    counts, examples = status_counts(history)
    return {"run_id": run_id, "stage": "gold status", "status": "succeeded", "skipped": False,
            "tables": {"gold": {"path": table, "version": version}}, "counts": counts,
            "conflict_examples": examples}  # fmt: skip


def status_counts(history: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Counts and conflict examples of ``gold status`` from every label ever imported.

    A row's current label is its latest (``annotated_at``, then ``imported_at``, then annotator,
    as :func:`current_gold`); its split is that of its first label.
    """
    ordered = sorted(history, key=lambda r: (r["imported_at"], r["annotated_at"]))
    split: dict[str, str] = {}
    current: dict[str, tuple[tuple, str]] = {}
    for r in ordered:
        split.setdefault(r["row_id"], r["split"])
        key = (r["annotated_at"], r["imported_at"], r["annotator"])
        if r["row_id"] not in current or key >= current[r["row_id"]][0]:
            current[r["row_id"]] = (key, r["label_name"])
    per = Counter((split[row], name) for row, (_, name) in current.items())
    conflicts = _conflicts([(r["row_id"], r["annotator"], r["label_name"], r["annotated_at"]) for r in ordered])
    counts = {
        "rows": len(current), "labels_given": len(ordered), "annotators": len({r["annotator"] for r in ordered}),
        "imports": len({r["import_id"] for r in ordered}), "conflicts": len(conflicts),
        "current": {f"{sp}/{name}": n for (sp, name), n in sorted(per.items())},
    }  # fmt: skip
    examples = [{"row_id": row, "labels": dict(sorted(labels.items()))}
                for row, labels in sorted(conflicts.items())[:_EXAMPLES]]  # fmt: skip
    return counts, examples


def run(spark: SparkSession, cfg: PipelineConfig, *, run_id: str, file: str, format: FileFormat = "auto",
        annotator: str | None = None, split: str | None = None) -> dict[str, Any]:
    """``lakelabel gold import``: see :func:`import_file`."""
    return import_file(spark, cfg, file, run_id=run_id, fmt=format, annotator=annotator, split=split)
