"""What the Databricks notebooks in ``notebooks/`` call to develop an LF.

Each function here is one call from a notebook cell and works the same on a laptop (local
Spark) and on a cluster (the active session is reused). Heavy work stays on Spark: only
aggregates over a small sample and a few example rows reach the driver.

* :func:`load_notebook_config` reads a pipeline config from widget values.
* :func:`try_lf` applies a draft LF together with the registered library to a sample of the
  source and reports the draft's coverage, its overlaps and conflicts with each library LF, its
  accuracy on rows with dev labels, errors and example rows.

Reading labels and lineage back is :mod:`jobs.notebook.inspect`.
"""

from __future__ import annotations

import logging
import os
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import delta_io
from jobs.runtime.config import PipelineConfig
from jobs.runtime.config_loading import load_config
from jobs.delta_io.sources import Source, gold_ids, load_source, unmatched_gold
from jobs.apply_lfs import build_registry, compute_votes
from lf_library import LabelingFunction, LFRegistry
from lf_library.apply import required_columns
from lf_library.errors import ConfigError, InputDataError, LFConfigError

__all__ = ["LFTrial", "draw_sample", "load_notebook_config", "try_lf"]

log = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parents[2]
_DEV_MODES = ("auto", "evaluation")


def widget_count(value: str, name: str) -> int:
    """A widget's text as a whole number above 0 (``sample_rows``, ``rows``).

    Raises
    ------
    ConfigError
        Naming the widget and its text, not Python's ``invalid literal for int()``.
    """
    text = str(value).strip().replace("_", "")
    if not (text.isascii() and text.isdecimal()) or int(text) < 1:
        raise ConfigError(f"widget {name!r} must be a whole number above 0, not {value!r}: set it in the widget bar")
    return int(text)


def load_notebook_config(config: str, *, env: str = "", overrides: str = "") -> PipelineConfig:
    """Load a pipeline config from widget values.

    Parameters
    ----------
    config : str
        YAML path. A relative path is tried against the working directory, then against the
        repository root (on Databricks a notebook runs in ``notebooks/``, so ``conf/demo.yaml``
        still resolves in a Git folder); found there, the process changes its working directory
        to the root, against which the config's own relative paths are then read.
    env : str
        Environment overlay name (``conf/env/<env>.yaml``); empty for none.
    overrides : str
        ``section.key=value`` items separated by ``;``.
    """
    path = Path(config)
    from_repo = not path.is_absolute() and not path.exists() and (_REPO / path).exists()
    if from_repo:
        path = _REPO / path
    items = [item.strip() for item in overrides.split(";") if item.strip()]
    try:
        cfg = load_config(path, env=env or None, overrides=items)
    except ConfigError as err:  # an override is a widget item here, not a --set option
        message = str(err)
        if message.startswith("--set "):
            raise ConfigError("overrides item " + message[len("--set "):]) from None
        # The command line's option names are the widgets' here (a drill: "with --config" in a notebook).
        said = message.replace("with --config", "as config").replace("Fix --env", "Fix env")
        if said != message:
            raise ConfigError(said) from None
        raise
    if from_repo and Path.cwd() != _REPO:
        # The paths inside the config (lakehouse, sources, LF files) are read relative to the working
        # directory when used: work from the repository root, as the command line does.
        log.info("config %s found under the repository root %s: working from there", config, _REPO)
        os.chdir(_REPO)
    return cfg


# --------------------------------------------------------------------------------------------
# developing an LF


@dataclass(frozen=True, eq=False)  # holds DataFrames: compare fields, not trials
class LFTrial:
    """What a draft LF does on a sample of the source, next to the registered library.

    Fractions follow Snorkel's ``LFAnalysis``: ``coverage``, ``overlap_rate`` and
    ``conflict_rate`` are shares of the ``sample_rows`` rows.

    Attributes
    ----------
    name, version, kind : str
        The draft LF; ``version`` is the one the votes table would record.
    label_space : tuple of str
        The library's class names (the draft votes class ids in it).
    replaces : str or None
        Version of the library LF with the draft's name, left out of the comparison.
    sample_rows : int
        Rows in the sample.
    votes, errors : int
        Sample rows the draft voted on / raised on (or returned a value outside the label space).
    class_votes : dict of str to int
        Votes per class name.
    overlaps, conflicts : int
        Sample rows where the draft voted and at least one library LF voted / voted another class.
    per_lf : pandas.DataFrame
        One row per library LF: ``lf, version, votes`` (its votes on the sample), ``overlaps``,
        ``agreements``, ``conflicts`` (rows both voted, same class, other class) and
        ``disagreement`` (conflicts / overlaps).
    dev_labels : str or None
        Where the dev labels came from, e.g. ``"source column true_label"``; None: no accuracy.
    dev_rows, dev_voted, dev_correct : int
        Rows with a dev label, those the draft voted on, and those it got right.
    accuracy : float or None
        ``dev_correct / dev_voted`` (None when it voted on no labeled row).
    error_samples, vote_examples, conflict_examples : pandas.DataFrame
        A few rows (ordered by row id) where the draft raised, voted, or conflicted.
    """

    name: str
    version: str
    kind: str
    label_space: tuple[str, ...]
    replaces: str | None
    sample_rows: int
    votes: int
    errors: int
    class_votes: dict[str, int]
    overlaps: int
    conflicts: int
    per_lf: pd.DataFrame = field(repr=False)
    dev_labels: str | None
    dev_rows: int
    dev_voted: int
    dev_correct: int
    error_samples: pd.DataFrame = field(repr=False)
    vote_examples: pd.DataFrame = field(repr=False)
    conflict_examples: pd.DataFrame = field(repr=False)

    @property
    def coverage(self) -> float:
        return self.votes / self.sample_rows if self.sample_rows else float("nan")

    @property
    def overlap_rate(self) -> float:
        return self.overlaps / self.sample_rows if self.sample_rows else float("nan")

    @property
    def conflict_rate(self) -> float:
        return self.conflicts / self.sample_rows if self.sample_rows else float("nan")

    @property
    def accuracy(self) -> float | None:
        return self.dev_correct / self.dev_voted if self.dev_voted else None

    def summary(self) -> pd.DataFrame:
        """The headline numbers as a two-column ``metric, value`` table (for ``display``)."""
        rows: list[tuple[str, Any]] = [
            ("lf", f"{self.name}@{self.version} ({self.kind})"),
            ("replaces library version", self.replaces or "-"),
            ("sample rows", self.sample_rows),
            ("votes", f"{self.votes} ({self.coverage:.1%} coverage)"),
            ("votes per class", ", ".join(f"{c}={n}" for c, n in self.class_votes.items())),
            ("errors", self.errors),
            ("overlaps with library", f"{self.overlaps} ({self.overlap_rate:.1%} of sample)"),
            ("conflicts with library", f"{self.conflicts} ({self.conflict_rate:.1%} of sample)"),
        ]
        if self.dev_labels is None:
            rows.append(("accuracy", "no dev labels"))
        else:
            acc = "-" if self.accuracy is None else f"{self.accuracy:.1%}"
            rows.append(("accuracy", f"{acc} on {self.dev_voted} voted of {self.dev_rows} labeled rows "
                                     f"({self.dev_labels})"))
        return pd.DataFrame(rows, columns=["metric", "value"]).astype({"value": str})

    def __str__(self) -> str:
        return self.summary().to_string(index=False)


def draw_sample(
    spark: SparkSession, cfg: PipelineConfig, sample_rows: int, *, seed: int = 0, source: Source | None = None
) -> DataFrame:
    """A deterministic pseudo-random sample of ``sample_rows`` source rows (all rows if fewer).

    Rows are ranked by a seeded hash of their id, so the same source, size and seed give the
    same rows on every run; Spark keeps only the top ``sample_rows`` per partition.
    """
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise ValueError(f"sample_rows must be an int >= 1, got {sample_rows!r}")
    source = source or load_source(spark, cfg.source, io=delta_io.delta_io(spark, cfg.tables.delta_io))
    key = F.col(source.id_column)
    return source.df.orderBy(F.xxhash64(key.cast("string"), F.lit(seed)), key).limit(sample_rows)


def require_single_task(cfg: PipelineConfig, notebook: str) -> None:
    """Raise :class:`ConfigError` when ``cfg`` declares several tasks: ``notebook`` reads one label space.

    ``develop_lf`` compares a draft with one library (a multi-task config's registry mixes the
    tasks' label spaces) and ``inspect_labels`` reads the single-task labels table (a multi-task
    run writes ``<tables.labels>_tasks``); without this they said "class_0, ..." or "no labels table".
    """
    from jobs.tasks import build_task_set, is_multitask

    if not is_multitask(cfg):
        return
    names = ", ".join(build_task_set(cfg).names)
    raise ConfigError(
        f"the config declares several tasks ({names}); the {notebook} notebook reads a single-task config: give it a "
        f"config with one task's LFs and gold_column, or read a task's labels with "
        f"jobs.multitask_labels.task_labels(spark, cfg, TASK), `lakelabel report --task TASK` or `lakelabel explain "
        f"--task TASK`"
    )


# Drafts whose label space a try_lf gave them, not their author: trying one next against another config's library
# was refused for a "label_space=" it was never given (a drill, session 39), so the next library's replaces it.
_GIVEN: weakref.WeakKeyDictionary[LabelingFunction, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _library_with(cfg: PipelineConfig, draft: LabelingFunction) -> tuple[LFRegistry, str | None]:
    """The registered library with ``draft`` added (replacing a library LF of the same name)."""
    if not isinstance(draft, LabelingFunction):
        raise TypeError(
            f"try_lf needs a LabelingFunction, got {type(draft).__name__}: decorate the function with "
            f"@labeling_function() or build it with keyword_lf/regex_lf/lexicon_lf/sql_lf"
        )
    require_single_task(cfg, "develop_lf")
    library = build_registry(cfg)
    if draft.label_space is not None and _GIVEN.get(draft) == tuple(draft.label_space):
        draft.label_space = None  # a library's, from an earlier try: this library's replaces it
    if draft.label_space is not None and tuple(draft.label_space) != library.label_space:
        raise LFConfigError(
            f"draft LF {draft.name!r} has label space {list(draft.label_space)}, but the library "
            f"({', '.join(cfg.lfs.modules) or 'declared LFs of the config'}) uses {list(library.label_space)}; drop "
            f"the draft's label_space= or make them equal"
        )
    replaces = library[draft.name].version if draft.name in library else None
    combined = library.select(exclude=[draft.name]) if replaces else library
    if draft.label_space is None:
        _GIVEN[draft] = library.label_space
    combined.register(draft)  # gives it the library's label space: draft.version is then the trial's
    return combined, replaces


def _dev_source(cfg: PipelineConfig, dev_labels: str | None) -> tuple[str | None, str | None]:
    """``(mode, gold column)``: mode is "source", "evaluation" or None (no accuracy)."""
    if dev_labels is None:
        return None, None
    if dev_labels == "auto":
        if cfg.source.gold_column:
            return "source", cfg.source.gold_column
        if cfg.evaluation is not None and cfg.evaluation.gold_column:
            return "evaluation", cfg.evaluation.gold_column
        return None, None
    if dev_labels == "evaluation":
        if cfg.evaluation is None or not cfg.evaluation.gold_column:
            raise ConfigError(
                "dev_labels='evaluation' needs an `evaluation:` source with a gold_column in the config; "
                "add one, or pass a gold column of the source"
            )
        return "evaluation", cfg.evaluation.gold_column
    return "source", dev_labels


def try_lf(
    spark: SparkSession,
    cfg: PipelineConfig,
    draft: LabelingFunction,
    *,
    sample_rows: int = 10_000,
    dev_labels: str | None = "auto",
    seed: int = 0,
    examples: int = 5,
) -> LFTrial:
    """Apply a draft LF and the registered library to a sample and compare them.

    The LFs run through the apply job's code (:func:`jobs.apply_lfs.compute_votes`), so the
    draft behaves exactly as it will in the pipeline; rows it raises on count as errors instead
    of failing. Everything is aggregated on Spark.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    cfg : PipelineConfig
        Names the source and the LF library (``lfs.modules``).
    draft : LabelingFunction
        The LF under development. Without a label space it gets the library's; a library LF
        with the same name is left out of the comparison (the draft replaces it).
    sample_rows : int
        Rows drawn from the source by :func:`draw_sample`.
    dev_labels : str or None
        ``"auto"``: the source's ``gold_column`` when configured, else the ``evaluation:``
        source. ``"evaluation"``: the ``evaluation:`` source (the draft runs on up to
        ``sample_rows`` of its rows). Any other string: a column of the source holding dev labels
        (class names or ids). None: no accuracy.
    seed : int
        Seed of the sample.
    examples : int
        Example rows kept per table.

    Raises
    ------
    LFConfigError
        The draft's label space differs from the library's.
    ConfigError, InputDataError
        No ``evaluation:`` source for ``dev_labels="evaluation"``, or a dev label column that
        the source lacks.
    """
    registry, replaces = _library_with(cfg, draft)
    mode, gold_column = _dev_source(cfg, dev_labels)
    space, k, name = registry.label_space, registry.cardinality, draft.name
    source = load_source(spark, cfg.source, io=delta_io.delta_io(spark, cfg.tables.delta_io))
    if mode == "source" and gold_column not in source.df.columns:
        raise InputDataError(
            f"dev label column {gold_column!r} not found in {source.info.path}; its columns are: "
            f"{', '.join(source.df.columns)}. Pass one of them as dev_labels, 'evaluation' or None"
        )
    needed = None if draft.kind == "sql" else required_columns([draft])  # a SQL LF's are inside its expression
    missing = sorted(set(needed or ()) - set(source.df.columns))
    if missing:
        raise InputDataError(
            f"draft LF {name!r} reads column(s) {missing}, which {source.info.path} lacks; its columns are: "
            f"{', '.join(source.df.columns)}. Fix the LF's field(s)"
        )
    sample = draw_sample(spark, cfg, sample_rows, seed=seed, source=source).persist()
    votes = compute_votes(
        replace(source, df=sample, gold_column=gold_column if mode == "source" else None),
        registry, batch_size=cfg.apply.batch_size,
    ).persist()
    class_name = F.element_at(F.array(*[F.lit(c) for c in space]), F.col("vote").cast("int") + 1)
    try:
        mine = votes.where(F.col("lf_name") == name).select(
            "row_id", F.col("vote").alias("d_vote"), F.col("error").alias("d_error"),
            F.col("error_kind").alias("d_kind"))
        library = votes.where((F.col("lf_name") != name) & (F.col("vote") >= 0))
        both = mine.where(F.col("d_vote") >= 0).join(library.select("row_id", "lf_name", "vote"), "row_id")
        per_row = both.groupBy("row_id").agg(
            F.max((F.col("vote") != F.col("d_vote")).cast("int")).alias("conflicted"),
            F.array_sort(F.collect_list(F.when(F.col("vote") != F.col("d_vote"),
                                               F.concat_ws("=", "lf_name", class_name)))).alias("disagreeing"),
        )
        gold = gold_ids(replace(source, df=sample, gold_column=gold_column), space) if mode == "source" else F.lit(-1)
        ids = sample.select(F.col(source.id_column).alias("row_id"), gold.cast("int").alias("gold"))
        rows = ids.join(mine, "row_id", "left").join(per_row, "row_id", "left")
        voted, labeled = F.col("d_vote") >= 0, F.col("gold") >= 0
        total = rows.agg(
            F.count(F.lit(1)).alias("n"),
            _count(voted).alias("votes"),
            _count(F.col("d_error").isNotNull()).alias("errors"),
            _count(F.col("conflicted").isNotNull()).alias("overlaps"),
            _count(F.col("conflicted") == 1).alias("conflicts"),
            _count(labeled).alias("dev_rows"),
            _count(labeled & voted).alias("dev_voted"),
            _count(labeled & (F.col("d_vote") == F.col("gold"))).alias("dev_correct"),
            *[_count(F.col("d_vote") == c).alias(f"class_{c}") for c in range(k)],
        ).first()
        per_lf = _per_lf_table(library, both, registry, name)
        columns = [c for c in sample.columns if c != source.id_column]
        if needed is not None:  # a SQL LF: show every column
            columns = [c for c in columns if c in needed or c == gold_column]
        text = sample.select(F.col(source.id_column).alias("row_id"), *columns)
        d_name = F.element_at(F.array(*[F.lit(c) for c in space]), F.col("d_vote").cast("int") + 1)
        vote_examples = (
            mine.where(voted).join(text, "row_id").orderBy("row_id").limit(examples)
            .select("row_id", d_name.alias("vote"), *columns).toPandas()
        )
        conflict_examples = (
            mine.join(per_row.where(F.col("conflicted") == 1), "row_id").join(text, "row_id")
            .orderBy("row_id").limit(examples)
            .select("row_id", d_name.alias("vote"), "disagreeing", *columns).toPandas()
        )
        unmatched = None
        if mode == "source" and total["dev_rows"] < total["n"]:  # read while the sample is cached
            unmatched = unmatched_gold(replace(source, df=sample, gold_column=gold_column), space,
                                       key="dev_labels" if dev_labels != "auto" else "source.gold_column")
        error_samples = pd.DataFrame(columns=["row_id", "error", "kind"])
        if total["errors"]:
            error_samples = (
                mine.where(F.col("d_error").isNotNull()).orderBy("row_id").limit(examples)
                .select("row_id", F.col("d_error").alias("error"), F.col("d_kind").alias("kind")).toPandas()
            )
    finally:
        votes.unpersist()
        sample.unpersist()
    dev = {"dev_rows": total["dev_rows"], "dev_voted": total["dev_voted"], "dev_correct": total["dev_correct"]}
    dev_name = f"source column {gold_column}" if mode == "source" else None
    if unmatched:  # a column of other values ("channel") gave "- on 0 voted of 0 labeled rows" and nothing more
        scored = (f"the draft's accuracy is measured on the {total['dev_rows']:,} sample row(s) with a dev label"
                  if total["dev_rows"] else "no sample row has a dev label, so the draft's accuracy is not measured")
        log.warning("try_lf: %s; %s. Pass a column of class names or ids as dev_labels, or None", unmatched, scored)
    if mode == "evaluation":
        dev = _evaluation_accuracy(spark, cfg, draft, space, sample_rows=sample_rows, seed=seed)
        dev_name = f"evaluation source {cfg.evaluation.path} column {gold_column}"
    return LFTrial(
        name=name,
        version=draft.version,
        kind=draft.kind,
        label_space=space,
        replaces=replaces,
        sample_rows=int(total["n"]),
        votes=int(total["votes"]),
        errors=int(total["errors"]),
        class_votes={c: int(total[f"class_{i}"]) for i, c in enumerate(space)},
        overlaps=int(total["overlaps"]),
        conflicts=int(total["conflicts"]),
        per_lf=per_lf,
        dev_labels=dev_name,
        dev_rows=int(dev["dev_rows"]),
        dev_voted=int(dev["dev_voted"]),
        dev_correct=int(dev["dev_correct"]),
        error_samples=error_samples,
        vote_examples=vote_examples,
        conflict_examples=conflict_examples,
    )


def _count(condition: Any) -> Any:
    """Rows where ``condition`` holds (null counts as false)."""
    return F.coalesce(F.sum(F.when(condition, 1).otherwise(0)), F.lit(0))


def _per_lf_table(library: DataFrame, both: DataFrame, registry: LFRegistry, draft: str) -> pd.DataFrame:
    """Votes on the sample and overlaps/agreements/conflicts with the draft, per library LF."""
    own = library.groupBy("lf_name").agg(F.count(F.lit(1)).alias("votes"))
    shared = both.groupBy("lf_name").agg(
        F.count(F.lit(1)).alias("overlaps"),
        _count(F.col("vote") == F.col("d_vote")).alias("agreements"),
        _count(F.col("vote") != F.col("d_vote")).alias("conflicts"),
    )
    got = {r["lf_name"]: r for r in own.join(shared, "lf_name", "left").collect()}
    records = []
    for lf in registry.lfs:
        if lf.name == draft:
            continue
        r = got.get(lf.name)
        counts = [int(r[c] or 0) if r is not None else 0 for c in ("votes", "overlaps", "agreements", "conflicts")]
        records.append([lf.name, lf.version, *counts])
    table = pd.DataFrame(records, columns=["lf", "version", "votes", "overlaps", "agreements", "conflicts"])
    table["disagreement"] = table["conflicts"] / table["overlaps"].where(table["overlaps"] > 0)
    return table


def _evaluation_accuracy(
    spark: SparkSession, cfg: PipelineConfig, draft: LabelingFunction, space: tuple[str, ...], *,
    sample_rows: int, seed: int,
) -> dict[str, int]:
    """Dev counts of the draft alone on up to ``sample_rows`` rows of the ``evaluation:`` source."""
    ev = load_source(spark, cfg.evaluation, role="evaluation", io=delta_io.delta_io(spark, cfg.tables.delta_io))
    rows = draw_sample(spark, cfg, sample_rows, seed=seed, source=ev)
    alone = LFRegistry(space)
    alone.register(draft)
    votes = compute_votes(replace(ev, df=rows), alone, batch_size=cfg.apply.batch_size)
    gold = gold_ids(replace(ev, df=rows), space)
    ids = rows.select(F.col(ev.id_column).alias("row_id"), gold.alias("gold")).where(F.col("gold") >= 0)
    joined = ids.join(votes.where(F.col("vote") >= 0).select("row_id", "vote"), "row_id", "left")
    r = joined.agg(
        F.count(F.lit(1)).alias("dev_rows"),
        _count(F.col("vote").isNotNull()).alias("dev_voted"),
        _count(F.col("vote") == F.col("gold")).alias("dev_correct"),
    ).first()
    return {key: int(r[key]) for key in ("dev_rows", "dev_voted", "dev_correct")}
