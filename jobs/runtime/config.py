"""Pipeline configuration: the frozen dataclasses a pipeline run reads, one per YAML section.

Each section checks its own values (``__post_init__``). Reading YAML files, environment overlays,
``${VAR}`` references and ``--set`` overrides into these classes is :mod:`jobs.runtime.config_loading`
(:func:`~jobs.runtime.config_loading.load_config`, :func:`~jobs.runtime.config_loading.config_from_dict`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labelmodel.config import LabelModelConfig
from lf_library.errors import ConfigError

__all__ = [
    "SourceConfig",
    "LFConfig",
    "TaskConfig",
    "MultiLabelConfig",
    "TablesConfig",
    "ApplyConfig",
    "AggregateConfig",
    "OutputConfig",
    "MLflowConfig",
    "SparkConfig",
    "SlicesConfig",
    "AnalysisConfig",
    "ReportConfig",
    "GoldConfig",
    "AnnotateConfig",
    "EndModelConfig",
    "DriftConfig",
    "PipelineConfig",
]


@dataclass(frozen=True)
class SourceConfig:
    """The table to label: a Delta table, Parquet or CSV (a path, or a list of paths)."""

    path: str | list[str] = ""
    format: Literal["auto", "delta", "parquet", "csv"] = "auto"
    id_column: str = "id"
    gold_column: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    # Drop rows that are exact copies of another row (every column equal) before labeling.
    drop_duplicate_rows: bool = False


@dataclass(frozen=True)
class LFConfig:
    """Which LFs to register: modules to import, declared LFs, optional name filters and label space."""

    modules: list[str] = field(default_factory=list)
    include: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    label_space: list[str] | None = None
    # LFs without code (lf_library.declared): entries {name, kind, ...} and YAML files of entries.
    declared: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskConfig:
    """One labeling task of a multi-task run (README "Several tasks at once").

    ``label_space`` routes LFs: a module's LF belongs to the task with its label space. ``lfs``
    lists LFs (modules, declared) that belong to this task only; ``gold_column`` holds its truth
    in the source and the evaluation source.
    """

    name: str = ""
    label_space: list[str] | None = None
    gold_column: str | None = None
    lfs: LFConfig = field(default_factory=LFConfig)


@dataclass(frozen=True)
class MultiLabelConfig:
    """k binary tasks ``<name>_<tag>`` over one tag list; a tag's label space is ``(not_<tag>, <tag>)``."""

    name: str = ""
    tags: list[str] = field(default_factory=list)
    # A source column listing each row's tags (an array, or a string joined by ``separator``).
    gold_column: str | None = None
    separator: str = ","
    lfs: LFConfig = field(default_factory=LFConfig)


# tables.compact_min_files' default: Databricks auto compaction's minNumFiles (jobs.compaction says why).
COMPACT_MIN_FILES = 50


@dataclass(frozen=True)
class TablesConfig:
    """Output Delta tables; relative paths live under the lakehouse folder."""

    votes: str = "votes"
    labels: str = "labels"
    # Gold labels that people gave (lakelabel gold import); see README "People in the loop".
    gold: str = "gold"
    # The end model's predictions (lakelabel train); see README "Train a model on the labels".
    predictions: str = "predictions"
    # Rows whose labels changed between two runs (lakelabel diff); see README "What changed: lakelabel diff".
    label_changes: str = "label_changes"
    # How jobs read and write Delta: "native" through the Delta Spark extension (Databricks, clusters
    # with the Delta jars), "local" through pyarrow + delta-rs, "auto" native when available.
    delta_io: Literal["auto", "local", "native"] = "auto"
    # Compact the votes tables (votes, its row hashes) after a run or apply, on the local path, once they hold at
    # least this many small files (jobs.compaction); 0 or false: never. true: the default.
    compact_min_files: int | bool = COMPACT_MIN_FILES

    def __post_init__(self) -> None:
        if isinstance(self.compact_min_files, bool):  # YAML's false (true): off (the default)
            object.__setattr__(self, "compact_min_files", COMPACT_MIN_FILES if self.compact_min_files else 0)
        if self.compact_min_files < 0:
            raise ConfigError(f"tables.compact_min_files = {self.compact_min_files} must be >= 0 (small files that "
                              f"trigger a compaction of the votes tables; 0 or false: never compact)")
        for name in TABLE_NAMES:
            value = getattr(self, name)
            if isinstance(value, str) and not value.strip():
                default = next(f.default for f in dataclasses.fields(self) if f.name == name)
                raise ConfigError(f"tables.{name} is empty ({value!r}); set it to the {name} table's path (relative "
                                  f"to the lakehouse, or a URI) or leave it out for the default {default!r} (an unset "
                                  f"template or environment variable gives an empty value)")


# apply.lf_timeout_seconds' ceiling: a year (the timer an LF's budget arms refuses more than ~9.2e9 s).
MAX_LF_TIMEOUT_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class ApplyConfig:
    max_error_rate: float = 0.05
    error_samples: int = 5
    batch_size: int = 10_000
    # Fail (nothing committed) when fewer than this fraction of rows get a vote; a run where no
    # LF votes on any row always fails.
    min_coverage: float = 0.0
    # Time budget of one LF on one Arrow batch (apply.batch_size rows); 0 turns it off.
    lf_timeout_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ConfigError(f"apply.max_error_rate = {self.max_error_rate} must be between 0 and 1 (a fraction of "
                              "an LF's rows; 0 fails on the first error)")
        if self.error_samples < 0:
            raise ConfigError(f"apply.error_samples = {self.error_samples} must be >= 0 (0 records no example rows)")
        if self.batch_size < 1:
            raise ConfigError(f"apply.batch_size = {self.batch_size} must be >= 1 (rows per Arrow batch)")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ConfigError(f"apply.min_coverage = {self.min_coverage} must be between 0 and 1 (a fraction of rows)")
        if not 0 <= self.lf_timeout_seconds <= MAX_LF_TIMEOUT_SECONDS:  # the alarm timer overflows past ~9.2e9 s
            raise ConfigError(f"apply.lf_timeout_seconds = {self.lf_timeout_seconds} must be between 0 and "
                              f"{MAX_LF_TIMEOUT_SECONDS} (seconds, a year; 0 turns it off)")


@dataclass(frozen=True)
class AggregateConfig:
    # Beyond this many distinct vote patterns the driver keeps only the overlap moments.
    max_patterns: int = 200_000

    def __post_init__(self) -> None:
        if self.max_patterns < 0:
            raise ConfigError(f"aggregate.max_patterns = {self.max_patterns} must be >= 0 (distinct vote patterns "
                              f"kept for the fit; 0 fits from overlap moments only)")


@dataclass(frozen=True)
class OutputConfig:
    tie_break_policy: Literal["abstain", "random", "first"] = "abstain"


@dataclass(frozen=True)
class MLflowConfig:
    enabled: bool = True
    # None: sqlite store under the lakehouse folder; MLFLOW_TRACKING_URI overrides it.
    tracking_uri: str | None = None
    experiment: str = "lakelabel"


@dataclass(frozen=True)
class SparkConfig:
    master: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    # On a cluster, how long a Spark job may wait with no executor registered (a request no worker
    # can meet, every worker gone) before the command fails with exit 3; Spark itself waits forever.
    # 0 turns it off.
    executor_wait_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.executor_wait_seconds >= 0:  # NaN too
            raise ConfigError(f"spark.executor_wait_seconds = {self.executor_wait_seconds} must be >= 0 "
                              "(0 turns the wait off)")


@dataclass(frozen=True)
class SlicesConfig:
    """Slicing functions that ``lakelabel analyze`` reports on: modules to import."""

    modules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnalysisConfig:
    """``lakelabel analyze``: example rows per error bucket, LF pairs listed, coverage breakdowns."""

    examples: int = 5
    top_pairs: int = 10
    # Source columns to break the uncovered rows down by (e.g. a partition column).
    coverage_by: list[str] = field(default_factory=list)
    # LFs (worst on gold first) that get their own "LF wrong against gold" bucket.
    lf_buckets: int = 3
    # Terms listed per keyword or lexicon LF, most frequent first (jobs.analysis.terms); 0: no term counts.
    top_terms: int = 20


@dataclass(frozen=True)
class ReportConfig:
    """``lakelabel report``; ``enabled``: ``lakelabel run`` also writes it at the end."""

    enabled: bool = False


@dataclass(frozen=True)
class GoldConfig:
    """How the gold table is split and used (README "People in the loop")."""

    # Share of gold rows hashed into the dev split (the rest is test) when an import names no split.
    dev_fraction: float = 0.5
    # Fit the label model with the dev split as Y_dev (votes as L_dev). Spelled label_model.use_dev_labels
    # in YAML; config_loading.config_from_dict moves it here, so labelmodel's config stays the model's own.
    use_dev_labels: bool = False


@dataclass(frozen=True)
class AnnotateConfig:
    """What `lakelabel annotate` puts in front of an annotator."""

    # The text to label; default: the column the LFs read (the first, alphabetically).
    text_column: str | None = None
    # More source columns shown beside the text (e.g. author, date).
    columns: list[str] = field(default_factory=list)
    seed: int = 0


@dataclass(frozen=True)
class EndModelConfig:
    """``lakelabel train``: the Spark ML end model trained on the labels (README "Train a model on the labels")."""

    # Text features: source columns (default: the columns the text LFs read), word 1..ngrams-grams,
    # hashed into num_features buckets, then IDF (terms in fewer than min_doc_freq rows count 0).
    text_columns: list[str] | None = None
    ngrams: int = 2
    num_features: int = 1 << 14
    min_doc_freq: int = 1
    # Numeric columns (nulls -> the mean, scaled to [0, 1]) and categorical ones (one-hot, nulls and
    # unseen values get their own slot).
    numeric_columns: list[str] = field(default_factory=list)
    categorical_columns: list[str] = field(default_factory=list)
    classifier: Literal["logistic_regression", "naive_bayes", "linear_svc", "random_forest"] = "logistic_regression"
    max_iter: int = 100
    reg_param: float = 0.01
    elastic_net_param: float = 0.0
    smoothing: float = 1.0
    num_trees: int = 50
    max_depth: int = 8
    seed: int = 0
    # "probabilities": one row per class weighted by its probability; "hard": the label, weight 1.
    targets: Literal["probabilities", "hard"] = "probabilities"
    # Train also on rows no LF voted on (they carry the class prior, not evidence).
    include_unvoted: bool = False
    # The gold table's dev labels (people's labels) replace the label model's probabilities of those
    # rows as training targets, weight 1, voted on or not; test rows are only ever scored.
    use_dev_labels: bool = True
    # Fewer labeled rows than this fail the job (exit 2).
    min_labeled_rows: int = 20
    # MLflow registered model name; empty: log the model to the run without registering it.
    registered_name: str = "lakelabel_end_model"
    # Rows listed as feedback in the summary and the report (disagreements, least confident).
    feedback_rows: int = 10

    def __post_init__(self) -> None:
        checks = [("ngrams", self.ngrams, 1), ("num_features", self.num_features, 2),
                  ("min_doc_freq", self.min_doc_freq, 0), ("max_iter", self.max_iter, 1),
                  ("num_trees", self.num_trees, 1), ("max_depth", self.max_depth, 1),
                  ("min_labeled_rows", self.min_labeled_rows, 1), ("feedback_rows", self.feedback_rows, 0)]
        for name, value, low in checks:
            if value < low:
                raise ConfigError(f"end_model.{name} = {value} must be >= {low}")
        if self.reg_param < 0 or not 0 <= self.elastic_net_param <= 1 or self.smoothing < 0:
            raise ConfigError(f"end_model.reg_param ({self.reg_param}) and smoothing ({self.smoothing}) must be >= 0 "
                              f"and end_model.elastic_net_param ({self.elastic_net_param}) between 0 and 1")


@dataclass(frozen=True)
class DriftConfig:
    """How much a run may move from the previous one (README "Drift between runs").

    A change above a threshold is a warning in the run summary; above a ``fail_on_*`` threshold
    (null: never) the run fails with exit 2 before it publishes labels. Coverage, conflict rate and
    confidence changes are absolute differences of fractions; ``lf_votes`` and ``label_shift``
    are total variation distances between distributions.
    """

    enabled: bool = True
    lf_coverage: float = 0.05
    lf_votes: float = 0.10
    label_shift: float = 0.05
    conflict_rate: float = 0.05
    mean_confidence: float = 0.05
    fail_on_lf_coverage: float | None = None
    fail_on_lf_votes: float | None = None
    fail_on_label_shift: float | None = None
    fail_on_conflict_rate: float | None = None
    fail_on_mean_confidence: float | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "enabled" and value is not None and not value >= 0:
                raise ConfigError(f"drift.{f.name} = {value} must be >= 0 (a change in fractions)"
                                  + ("; null turns the failure off" if f.name.startswith("fail_on_") else ""))
            if self.enabled and f.name != "enabled" and value is not None and value > 1:  # 5 for 5%: never trips
                raise ConfigError(f"drift.{f.name} = {value} can never be reached: each change is a fraction between "
                                  f"0 and 1 (0.05 is 5%); use a value in [0, 1]"
                                  + (", or null to turn the failure off" if f.name.startswith("fail_on_") else
                                     ", or drift.enabled: false to turn the checks off"))


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one pipeline run needs. See README "Configuration reference"."""

    lakehouse: str = "./lakehouse"
    source: SourceConfig = field(default_factory=SourceConfig)
    evaluation: SourceConfig | None = None
    lfs: LFConfig = field(default_factory=LFConfig)
    # Several tasks in one run (jobs/tasks.py); empty: one task, as lfs: describes.
    tasks: list[TaskConfig] = field(default_factory=list)
    multi_label: MultiLabelConfig | None = None
    tables: TablesConfig = field(default_factory=TablesConfig)
    apply: ApplyConfig = field(default_factory=ApplyConfig)
    aggregate: AggregateConfig = field(default_factory=AggregateConfig)
    label_model: LabelModelConfig = field(default_factory=LabelModelConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    mlflow: MLflowConfig = field(default_factory=MLflowConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    slices: SlicesConfig = field(default_factory=SlicesConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    gold: GoldConfig = field(default_factory=GoldConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    end_model: EndModelConfig = field(default_factory=EndModelConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self) -> None:
        if isinstance(self.lakehouse, str) and not self.lakehouse.strip():
            raise ConfigError(f"lakehouse is empty ({self.lakehouse!r}); set it to the folder for the output tables, "
                              f"the MLflow store and the run files (an unset template or environment variable gives "
                              f"an empty value), or leave it out for the default ./lakehouse")
        for role, source in (("source", self.source), ("evaluation", self.evaluation)):
            if source is None:
                continue
            paths = source.path if isinstance(source.path, list) else [source.path]
            # source.path "" is the default (commands that read no source need none): config_loading refuses
            # it when a config or --set gives it; a blank item, or whitespace, is never a path.
            blank = not paths or any(not isinstance(p, str) or not p.strip() for p in paths)
            if blank and (role == "evaluation" or source.path != ""):
                raise ConfigError(f"{role}.path is empty ({source.path!r}); set it to a Delta table, Parquet or CSV "
                                  f"path (an unset template or environment variable gives an empty value)"
                                  + (", or drop the evaluation section" if role == "evaluation" else ""))
            if not source.id_column.strip():
                raise ConfigError(f"{role}.id_column is empty ({source.id_column!r}); name the column that identifies "
                                  f"a row, or leave it out for the default 'id'")
        if self.multi_label is not None and self.multi_label.separator == "":
            raise ConfigError("multi_label.separator is empty; it splits the gold column's tags (an empty one would "
                              "split them into characters): set it, e.g. ',', or leave it out for the default ','")
        if not self.mlflow.experiment.strip():
            raise ConfigError(f"mlflow.experiment is empty ({self.mlflow.experiment!r}); name the experiment, or leave "
                              f"it out for the default 'lakelabel'")
        self._check_table_paths()

    def _check_table_paths(self) -> None:
        """No table is the lakehouse folder itself (or holds it), and no two tables share or nest a path."""
        paths = {name: self.table_path(name) for name in TABLE_NAMES}
        local = {name: Path(p) for name, p in paths.items() if not _URI.match(p)}
        home = self.lakehouse_path
        for name, path in local.items():
            if home == path or home.is_relative_to(path):
                raise ConfigError(f"tables.{name} = {getattr(self.tables, name)!r} is the lakehouse folder {home}"
                                  f"{'' if home == path else ' or holds it'}; name a table folder under it "
                                  f"(default {name!r})")
        for i, a in enumerate(TABLE_NAMES):
            for b in TABLE_NAMES[i + 1:]:
                if a in local and b in local:
                    same = local[a] == local[b]
                    nested = local[a].is_relative_to(local[b]) or local[b].is_relative_to(local[a])
                else:  # URIs: the same string (a local path and a URI are not compared)
                    same = nested = paths[a].rstrip("/") == paths[b].rstrip("/")
                if nested:
                    how = "are the same table" if same else "nest one inside the other"
                    raise ConfigError(f"tables.{a} ({paths[a]}) and tables.{b} ({paths[b]}) {how}; give each table "
                                      f"its own folder (defaults {a!r} and {b!r})")

    def table_path(self, name: str) -> str:
        """Absolute path of an output table (``votes`` or ``labels``)."""
        raw = getattr(self.tables, name)
        if _URI.match(raw):  # s3://..., abfss://..., dbfs:/...
            return raw
        path = Path(raw)
        if not path.is_absolute():
            path = Path(self.lakehouse) / path
        return str(path.resolve())

    @property
    def lakehouse_path(self) -> Path:
        return Path(self.lakehouse).resolve()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["label_model"] = self.label_model.to_dict()  # leaves out keys added later while at their default
        return d


# The output tables of ``tables:`` (each a Delta table path).
TABLE_NAMES = ("votes", "labels", "gold", "predictions", "label_changes")

# A URI (s3://..., abfss://..., dbfs:/...): a table path kept as is; config_loading refuses it as the lakehouse.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
