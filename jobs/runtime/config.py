"""Pipeline configuration: YAML files with environment overlays, loaded into frozen dataclasses.

Every section is a frozen dataclass; unknown keys fail with a message that names the key and
lists the valid ones. Strings may reference environment variables as ``${NAME}`` or
``${NAME:-default}``. ``--set section.key=value`` overrides apply last.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

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
    "load_config",
    "config_from_dict",
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
        if self.lf_timeout_seconds < 0:
            raise ConfigError(f"apply.lf_timeout_seconds = {self.lf_timeout_seconds} must be >= 0 (0 turns it off)")


@dataclass(frozen=True)
class AggregateConfig:
    # Beyond this many distinct vote patterns the driver keeps only the overlap moments.
    max_patterns: int = 200_000


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
        if self.executor_wait_seconds < 0:
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
    # in YAML; config_from_dict moves it here, so labelmodel's config stays the model's own.
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


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UnsetVariable(ConfigError):
    """A ``${VAR}`` without a default whose variable is not set (``name``)."""

    def __init__(self, name: str, where: str = "config") -> None:
        super().__init__(f"{where} references ${{{name}}} but the environment variable is not set; "
                         f"set it or write ${{{name}:-default}}")
        self.name = name


def _expand_env(value: Any) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in every string of ``value``."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise _UnsetVariable(name)

        return _ENV.sub(repl, value)
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with the valid ones listed."""
    if hasattr(cls, "from_dict") and cls is not PipelineConfig:
        try:
            return cls.from_dict(data or {})
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{where}: {err}") from err
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(data).__name__}: {data!r}")
    _reject_unknown(cls, data, where)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _reject_unknown(cls: type, data: Mapping[str, Any], where: str, origin: str = "") -> None:
    """Raise for the first key of ``data`` that is not a field of ``cls``, listing the valid ones."""
    fields = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        label = f"{where}." if where else ""
        raise ConfigError(
            f"{origin}unknown config key {label}{unknown[0]}; valid keys{' of ' + where if where else ''}: "
            f"{', '.join(fields)}"
        )


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for arg in non_none:
            try:
                return _coerce(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r} is not valid; choose one of: {', '.join(map(str, args))}")
        return value
    if origin is list:
        if value is None:  # `key:` left empty in YAML, or --set key=null: an empty list
            return []
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {str(k): str(v) if not isinstance(v, bool) else str(v).lower() for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a{'n integer' if tp is int else ' number'}, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}; pass an existing YAML file with --config") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {yaml_problem(err)}; fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    _check_keys(PipelineConfig, _tasks_as_list({k: v for k, v in data.items() if k != "base"}), "", path)
    return data


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``line L, column C: problem`` (1-based, as editors count)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = " ".join(filter(None, [getattr(err, "context", None), getattr(err, "problem", None)])) or str(err)
    problem = " ".join(problem.split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def _check_keys(cls: type, data: Any, where: str, path: Path) -> None:
    """Reject an unknown key in one config file, naming the file (values are checked after merging)."""
    if not isinstance(data, Mapping):
        return
    if hasattr(cls, "from_dict") and cls is not PipelineConfig:  # its own from_dict checks values later
        if dataclasses.is_dataclass(cls):  # use_dev_labels: a gold switch spelled under label_model
            _reject_unknown(cls, {k: v for k, v in data.items() if k != "use_dev_labels"}, where, origin=f"{path}: ")
        return
    _reject_unknown(cls, data, where, origin=f"{path}: ")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        for tp in typing.get_args(hints[name]) or (hints[name],):
            if dataclasses.is_dataclass(tp):
                _check_keys(tp, value, f"{where}.{name}" if where else name, path)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({yaml_problem(err)}); quote it") from None
    keys: list[str | int] = []
    for part in key.strip().split("."):
        name, *indexes = part.split("[")
        if not name or any(not i.endswith("]") or not i[:-1].isdigit() for i in indexes):
            raise ConfigError(f"--set {item!r}: {key.strip()!r} is not a key path; write section.key, or "
                              f"section.list[0].key to set one item of a list")
        keys.append(name)
        keys.extend(int(i[:-1]) for i in indexes)
    return keys, value


def _key_label(keys: Sequence[str | int]) -> str:
    """``["lfs", "declared", 0, "keywords"]`` -> ``lfs.declared[0].keywords``, as errors name keys."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")


def config_from_dict(data: Mapping[str, Any]) -> PipelineConfig:
    """Validate a plain mapping (already merged) into a :class:`PipelineConfig`."""
    cfg = _build(PipelineConfig, _tasks_as_list(_move_use_dev_labels(_expand_env(dict(data)))), "")
    if _URI.match(cfg.lakehouse):
        raise ConfigError(
            f"lakehouse = {cfg.lakehouse!r} is a URI, but lakelabel keeps run files and the MLflow store under it "
            f"with local file APIs: use a local or mounted path (/Volumes/..., /dbfs/..., an NFS mount) and put the "
            f"tables on object storage with tables.votes / tables.labels URIs"
        )
    return cfg


def _tasks_as_list(data: dict[str, Any]) -> dict[str, Any]:
    """``tasks:`` may be a mapping of name -> task; make it the list form."""
    tasks = data.get("tasks")
    if isinstance(tasks, Mapping):
        items = []
        for name, body in tasks.items():
            if body is not None and not isinstance(body, Mapping):
                raise ConfigError(f"tasks.{name} must be a mapping (label_space, gold_column, lfs), got {body!r}")
            items.append({"name": name, **dict(body or {})})
        data = {**data, "tasks": items}
    return data


def _move_use_dev_labels(data: dict[str, Any]) -> dict[str, Any]:
    """``label_model.use_dev_labels`` is a pipeline switch, not a model parameter: keep it in ``gold``."""
    lm = data.get("label_model")
    if isinstance(lm, Mapping) and "use_dev_labels" in lm:
        lm = dict(lm)
        gold = dict(data.get("gold") or {})
        gold["use_dev_labels"] = lm.pop("use_dev_labels")
        data = {**data, "label_model": lm, "gold": gold}
    return data


SHIPPED_ENVS = Path(__file__).resolve().parents[2] / "conf" / "env"  # in a clone or an editable install


def _env_overlay(path: Path, env: str) -> Path:
    """``env/<env>.yaml`` beside the config, else the overlay lakelabel ships (``conf/env``), so a
    team's config kept outside lakelabel's ``conf`` folder can still say ``--env cluster``."""
    folders = [path.parent / "env"] + ([SHIPPED_ENVS] if SHIPPED_ENVS != (path.parent / "env").resolve() else [])
    for folder in folders:
        if (folder / f"{env}.yaml").is_file():
            return folder / f"{env}.yaml"
    known = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
    looked = " and ".join(str(folder / f"{env}.yaml") for folder in folders)
    raise ConfigError(f"no environment overlay {env!r}: looked for {looked}; known environments: "
                      f"{', '.join(known) or 'none'}. Fix --env, or write env/{env}.yaml beside {path.name}")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Load a pipeline config.

    Parameters
    ----------
    path : path, optional
        The YAML file. It may name a ``base:`` file (relative to itself) that it extends.
    env : str, optional
        An overlay name: ``conf/env/<env>.yaml`` beside the config's ``conf`` folder
        (``local``, ``cluster``, ``databricks``), merged over the file.
    overrides : sequence of str
        ``section.key=value`` items (YAML values), applied last.
    defaults : mapping, optional
        Values under everything else (used by the demo).
    """
    data: dict[str, Any] = dict(defaults or {})
    files: list[tuple[str, Path]] = []  # the files read, the last merged first (for an unset ${VAR})
    if path is not None:
        path = Path(path)
        # The file, its base, the base's base, ...: merged from the last, so each file wins over its base.
        chain = [(path, _read_yaml(path))]
        while base := chain[-1][1].pop("base", None):
            named_by = chain[-1][0]
            base_path = (named_by.parent / str(base)).resolve()
            if not base_path.is_file():
                raise ConfigError(f"{named_by}: base: {base} names no file ({base_path}); a base path is relative to "
                                  f"the file that names it, not to the working directory: fix base:")
            if base_path in {p.resolve() for p, _ in chain}:
                loop = " -> ".join(str(p) for p, _ in chain) + f" -> {base_path}"
                raise ConfigError(f"{named_by}: base: {base} makes a loop ({loop}); remove one of the base: keys")
            chain.append((base_path, _read_yaml(base_path)))
        files.extend((str(p), p) for p, _ in chain)
        for _, loaded in reversed(chain):
            data = _deep_merge(data, loaded)
        if env:
            overlay = _env_overlay(path, env)
            data = _deep_merge(data, _read_yaml(overlay))
            files.insert(0, (f"environment overlay {overlay}", overlay))
    set_keys = {}  # dotted key -> the --set item that wrote it, to say where an unknown key came from
    parsed = [(item, *_parse_override(item)) for item in overrides]
    # A task added on the command line comes with its label space (tasks.X.label_space=..., or tasks.X={...});
    # any other --set on a task the config lacks is a typo.
    new_tasks = {str(keys[1]) for _, keys, value in parsed if keys[0] == "tasks" and len(keys) >= 2 and (
        (len(keys) == 3 and keys[2] == "label_space") or (len(keys) == 2 and isinstance(value, Mapping)))}
    for item, keys, value in parsed:
        tasks = data.get("tasks")
        if isinstance(tasks, Mapping) and len(keys) >= 2 and keys[0] == "tasks":
            names = {str(k): k for k in tasks}
            if str(keys[1]) not in names and str(keys[1]) not in new_tasks:
                raise ConfigError(f"--set {item!r}: the config has no task {keys[1]!r} (its tasks: "
                                  f"{', '.join(names) or 'none left'}); fix the name, or also set "
                                  f"tasks.{keys[1]}.label_space to add a task")
            if len(keys) == 2 and value is None:  # --set tasks.NAME=null drops the task from this run
                data["tasks"] = {k: v for k, v in tasks.items() if str(k) != str(keys[1])}
                continue
            keys = ["tasks", names.get(str(keys[1]), keys[1]), *keys[2:]]  # a task named 1: is the YAML int 1
        for i in range(1, len(keys) + 1):  # a misspelled section (aply.x) is reported by its own name
            set_keys.setdefault(_key_label(keys[:i]), item)
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(key, int):
                if not isinstance(node, list):
                    raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} is not a list")
                if key >= len(node):
                    raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} has {len(node)} items (from 0); "
                                      f"set an existing item, or give the whole list ({_key_label(keys[:i])}=[...])")
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {_key_label(keys[:i])} is not a section")
            if last:
                node[key] = value
            elif isinstance(key, int):
                node = node[key]
            else:
                node = node.setdefault(key, {})
    try:
        return config_from_dict(data)  # ${VAR}s expanded once, after the files and --set are merged
    except _UnsetVariable as err:
        for label, file in files:  # name the file that wrote it (the overlay's wins, as in the merge)
            if "${" + err.name in file.read_text(encoding="utf-8"):
                raise _UnsetVariable(err.name, label) from None
        raise
    except ConfigError as err:
        unknown = re.match(r"unknown config key (\S+);", str(err))
        if unknown and unknown.group(1) in set_keys:
            raise ConfigError(f"--set {set_keys[unknown.group(1)]!r}: {err}") from None
        raise
