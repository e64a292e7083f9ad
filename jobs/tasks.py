"""Several tasks in one run: which LFs belong to which task, and each task's view of a run.

A config's ``tasks:`` (a list, or a mapping of name -> task) and ``multi_label:`` (k binary tasks
over one tag list) become a :class:`TaskSet`. LFs reach a task two ways: LFs of the top-level
``lfs.modules`` go to the task whose label space they have (an LF's own ``label_space``, else its
module's ``LABEL_SPACE``); LFs listed under a task's own ``lfs`` belong to that task. One apply
pass runs every task's LFs (:class:`TaskRegistry`: LF names are unique across tasks, so the
votes table needs no task column); :mod:`jobs.multitask` aggregates and fits per task and writes
every task's labels in one table.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from jobs.delta_io.sources import Source, gold_ids, gold_ids_of
from jobs.runtime.config import LFConfig, PipelineConfig, TaskConfig
from jobs.runtime.tracking import tracking_uri
from jobs.broken_tasks import BrokenTask, broken_error, describe, literal_label_space, shared_module_error
from lf_library import LabelingFunction, LFRegistry, load_registry
from lf_library.core import check_label_space
from lf_library.declared import declared_lfs
from lf_library.errors import ConfigError, LFConfigError
from lf_library.models import set_tracking_uri
from lf_library.registry import module_lfs, unknown_names_error
from lf_library.tags import check_tag, tag_space

__all__ = ["Task", "TaskSet", "TaskRegistry", "is_multitask", "build_task_set", "task_config", "task_source", "task_table",
           "task_gold_ids"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# Columns of the multi-task labels table next to the task columns (jobs/multitask_labels.py).
_RESERVED = frozenset({"row_id", "run_id", "tie_break_policy", "source_table", "source_version", "votes_version"})


@dataclass(frozen=True)
class Task:
    """One task: its name, label space, LFs and where its truth is."""

    name: str
    label_space: tuple[str, ...]
    registry: LFRegistry
    gold_column: str | None = None
    # Multi-label tasks: the tag, and how the tag-list gold column is split.
    tag: str | None = None
    separator: str = ","

    @property
    def lf_names(self) -> tuple[str, ...]:
        return self.registry.names


class TaskRegistry(LFRegistry):
    """The LFs of every task, for one apply pass; each LF keeps its own label space.

    ``label_space`` is ``class_0 .. class_{k-1}`` for the largest task's ``k``: it only sizes
    the votes arrays. A vote is a class id in its LF's own label space.
    """

    def __init__(self, tasks: Sequence[Task]) -> None:
        k = max(len(t.label_space) for t in tasks)
        super().__init__([f"class_{i}" for i in range(k)])
        for task in tasks:
            for lf in task.registry.lfs:
                self.register(lf, origin=task.registry.origin(lf.name))

    def _empty(self) -> TaskRegistry:
        """No LFs, the same sizing label space: :meth:`select` of a task registry (an incremental apply
        reapplies some LFs of several tasks) keeps each LF's own label space."""
        out = TaskRegistry.__new__(TaskRegistry)
        LFRegistry.__init__(out, self.label_space)
        return out

    def register(self, lf: LabelingFunction, *, origin: str | None = None) -> LabelingFunction:
        if lf.name in self._lfs:
            raise LFConfigError(
                f"LF names must be unique across tasks; duplicated: {lf.name!r} ({self.origin(lf.name)} and "
                f"{origin or '?'}); rename one of them"
            )
        if lf.label_space is None:
            raise LFConfigError(f"LF {lf.name!r} has no label space; it must belong to a task")
        lf.version  # noqa: B018 - computed on the driver before LFs ship to executors
        self._lfs[lf.name] = lf
        if origin:
            self._origin[lf.name] = origin
        return lf


@dataclass(frozen=True)
class TaskSet:
    tasks: tuple[Task, ...]
    registry: TaskRegistry

    def __getitem__(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task {name!r}; tasks: {[t.name for t in self.tasks]}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)


def task_table(path: str, suffix: str) -> str:
    """A table of one task (or of every task: ``suffix`` "tasks") beside ``path``: ``<path>_<suffix>``."""
    return f"{path.rstrip('/')}_{suffix}"


def is_multitask(cfg: PipelineConfig) -> bool:
    """True when the config declares ``tasks`` or ``multi_label``."""
    return bool(cfg.tasks) or cfg.multi_label is not None


def task_configs(cfg: PipelineConfig) -> list[tuple[TaskConfig, str | None]]:
    """The configured tasks, multi-label tags expanded; each with its tag (None for a plain task)."""
    out: list[tuple[TaskConfig, str | None]] = [(t, None) for t in cfg.tasks]
    ml = cfg.multi_label
    if ml is not None:
        if not ml.name or not _NAME.fullmatch(ml.name):
            raise ConfigError(f"multi_label.name = {ml.name!r}: give the tag set a name (letters, digits, '_')")
        if not ml.tags:
            raise ConfigError("multi_label.tags is empty; list the tags, e.g. tags: [refund, urgent]")
        dupes = sorted({t for t in ml.tags if ml.tags.count(t) > 1})
        if dupes:
            raise ConfigError(f"multi_label.tags repeats {dupes}; list each tag once")
        given = [key for key, value in (("declared", ml.lfs.declared), ("files", ml.lfs.files),
                                        ("label_space", ml.lfs.label_space is not None)) if value]  # fmt: skip
        if given:
            keys = " and ".join(f"multi_label.lfs.{key}" for key in given)
            raise ConfigError(f"{keys}: multi_label.lfs takes modules of tag LFs (lf_library.tags) and their "
                              f"include / exclude lists; a tag's label space is (not_<tag>, <tag>). Remove {keys}")
        for tag in ml.tags:
            try:
                check_tag(tag)
            except LFConfigError as err:
                raise ConfigError(f"multi_label.tags: {err}") from None
            out.append((TaskConfig(name=f"{ml.name}_{tag}", label_space=list(tag_space(tag)),
                                   gold_column=ml.gold_column), tag))
    return out


def task_gold_keys(cfg: PipelineConfig) -> dict[str, str]:
    """Each gold column the tasks read (in the source and the evaluation source) -> the key that names it."""
    keys = {t.gold_column: f"tasks.{t.name}.gold_column" for t in cfg.tasks if t.gold_column}
    if cfg.multi_label is not None and cfg.multi_label.gold_column:
        keys.setdefault(cfg.multi_label.gold_column, "multi_label.gold_column")
    return keys


def build_task_set(cfg: PipelineConfig, only: Sequence[str] | None = None) -> TaskSet:
    """The tasks of a multi-task config with their LFs.

    ``only``: the tasks the caller reads (``--task NAME``); None: every task. A task whose own LFs cannot be
    built (:mod:`jobs.broken_tasks`) fails the call only when it is one of those; the set holds the others.

    Raises
    ------
    ConfigError
        A bad task name or label space, ``source.gold_column`` set (gold is per task), an LF
        whose label space matches no task (or several), a task with no LFs.
    LFConfigError
        A task the caller reads whose LFs cannot be built (one line naming the task, the module and the
        fix), or a module of the top-level ``lfs.modules`` that cannot be imported (every task needs it, unless
        its file names one task's ``LABEL_SPACE``: then that task, as if the module were its own).
    """
    for role, section in (("source", cfg.source), ("evaluation", cfg.evaluation)):
        if section is not None and section.gold_column:
            raise ConfigError(
                f"{role}.gold_column = {section.gold_column!r} is ambiguous with several tasks: set the gold column "
                f"of each task instead (tasks.<name>.gold_column, multi_label.gold_column; read from the source and "
                f"the evaluation source alike) and drop {role}.gold_column"
            )
    set_tracking_uri(tracking_uri(cfg))  # model LFs resolve their URIs in the pipeline's store
    tagged = task_configs(cfg)
    configs = [t for t, _ in tagged]
    names = [t.name for t in configs]
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"task name {name!r} is not valid: use letters, digits and '_' starting with a letter "
                              f"(it names a column of the labels table and MLflow metrics)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"task names must be unique; duplicated: {dupes}")
    lowered = [n.lower() for n in names]
    clash = sorted({n for n in names if lowered.count(n.lower()) > 1 or n.lower() in _RESERVED})
    if clash:
        raise ConfigError(f"task name(s) {clash} clash with another task's or with a column of the labels table "
                          f"({', '.join(sorted(_RESERVED))}; Spark compares column names without case): rename them")
    by_task: dict[str, LFRegistry] = {}
    spaces: dict[str, tuple[str, ...] | None] = {}
    broken: dict[str, BrokenTask] = {}
    for t in configs:
        try:
            by_task[t.name] = _own_lfs(t)
        except (ConfigError, LFConfigError) as err:  # one team's broken module: the other tasks can still run
            broken[t.name] = BrokenTask(t.name, describe(err, t.lfs.modules), f"tasks.{t.name}.lfs",
                                        (f"tasks.{t.name}=null",))  # fmt: skip
            spaces[t.name] = tuple(t.label_space) if t.label_space else None
            continue
        spaces[t.name] = by_task[t.name].label_space
    failed = _route_shared_lfs(cfg.lfs, spaces, by_task, "lfs.modules")
    tag_tasks = {t.name for t, tag in tagged if tag is not None}
    drop_modules = f"'lfs.modules=[{', '.join(m for m in cfg.lfs.modules if m not in failed)}]'"
    for module, (owner, told, err) in failed.items():  # stop only the task their LABEL_SPACE names
        if owner in tag_tasks:  # a tag's task: multi_label=null would leave the module, and its space, in place
            raise shared_module_error(err, module, "lfs.modules") from err
        where = f"lfs.modules: {module}, whose LABEL_SPACE {list(told)} is this task's"
        if owner in broken:  # its own LFs failed too: one entry with both reasons and both fixes
            was = broken[owner]
            broken[owner] = replace(was, reason=f"{was.reason}; {where}: {describe(err, [module])}",
                                    drop=(*was.drop, drop_modules))
        else:
            broken[owner] = BrokenTask(owner, describe(err, [module]), where, (f"tasks.{owner}=null", drop_modules))
    if cfg.multi_label is not None:  # its modules hold tag LFs, routed by their tag's label space
        try:
            _route_shared_lfs(cfg.multi_label.lfs, spaces, by_task, "multi_label.lfs.modules")
        except (ConfigError, LFConfigError) as err:  # the tag tasks' own modules: they stop the tag tasks only
            for t, tag in tagged:
                if tag is not None:
                    broken[t.name] = BrokenTask(t.name, str(err), "multi_label.lfs", ("multi_label=null",))
    if cfg.multi_label is not None:  # its include / exclude name LFs of the tag tasks
        _check_tag_lists(cfg.multi_label.lfs, tagged, by_task, broken)
    # The top-level lists before the tasks are built: a typo there would otherwise show as tasks left with no LFs.
    known_lfs = sorted(_all_names(by_task))
    unknown = sorted(set(cfg.lfs.include or []).union(cfg.lfs.exclude) - set(known_lfs))
    # Tasks whose LF names are not all known: their own module failed, or a shared module routed to them.
    hidden = [n for n in broken if n not in by_task or any(owner == n for owner, _, _ in failed.values())]
    if unknown and not hidden:
        raise ConfigError(unknown_names_error({"lfs.include": cfg.lfs.include, "lfs.exclude": cfg.lfs.exclude},
                                              known_lfs))
    if unknown:
        log.warning("lfs.include/exclude name LF(s) %s that no task here has; they may be LFs of %s, which cannot be "
                    "built now, or typos (known LFs: %s)", unknown,
                    ("task " if len(hidden) == 1 else "tasks ") + ", ".join(map(repr, hidden)), known_lfs)
    tasks = []
    for t, tag in tagged:
        if t.name in broken:
            continue
        try:
            tasks.append(_task(cfg, t, tag, by_task[t.name], spaces[t.name]))
        except (ConfigError, LFConfigError) as err:  # no LFs left, an LF whose version cannot be computed
            key = "multi_label.lfs" if tag else f"tasks.{t.name}.lfs"
            broken[t.name] = BrokenTask(t.name, str(err), key, ("multi_label=null" if tag else f"tasks.{t.name}=null",))
    needed = names if only is None else [n for n in only if n in names]
    stopped = [broken[n] for n in needed if n in broken]
    if stopped:
        raise broken_error(stopped, [t.name for t in tasks])
    for module, (owner, told, err) in failed.items():
        if not _first_time(cfg, module):  # a command's precheck built this config's tasks already and said it
            continue
        log.warning("LF module %s (lfs.modules) fails, so task %r (its LABEL_SPACE %s) cannot run until it is fixed "
                    "(%s); an LF it would give another task (made with a label_space of its own in another file) is "
                    "missing from this command", module, owner, list(told), describe(err, [module]))
    return TaskSet(tuple(tasks), TaskRegistry(tasks))


def _task(cfg: PipelineConfig, t: TaskConfig, tag: str | None, registry: LFRegistry,
          space: tuple[str, ...]) -> Task:  # fmt: skip
    """The task ``t`` with its LFs (``registry``: its own and those routed to it) selected by the config."""
    if t.lfs.include is not None or t.lfs.exclude:
        registry = registry.select(include=t.lfs.include, exclude=t.lfs.exclude, config_key=f"tasks.{t.name}.lfs")
    for lists in ((cfg.lfs, cfg.multi_label.lfs) if tag and cfg.multi_label else (cfg.lfs,)):
        if lists.include is not None or lists.exclude:
            keep = [n for n in registry.names if (lists.include is None or n in lists.include)
                    and n not in lists.exclude]  # fmt: skip
            registry = registry.select(include=keep)
    if not len(registry):
        lists = tag and cfg.multi_label and (cfg.multi_label.lfs.include is not None or cfg.multi_label.lfs.exclude)
        where = (f"multi_label.lfs (tag LFs of lf_library.tags for tag {tag!r})"
                 + (", or let multi_label.lfs.include / exclude keep one of its LFs" if lists else "") if tag else
                 f"tasks.{t.name}.lfs, or add a module whose LABEL_SPACE is that label space to lfs.modules")
        raise ConfigError(f"task {t.name!r} (label space {list(space)}) has no LFs: list LFs under {where}")
    for lf in registry.lfs:
        lf.version  # noqa: B018 - an LF whose version cannot be computed stops its task here, not the others
    if cfg.mlflow.enabled:
        _check_metric_keys(t.name, registry.names)
    sep = cfg.multi_label.separator if tag and cfg.multi_label else ","
    return Task(t.name, space, registry, t.gold_column, tag, sep)


# MLflow refuses a metric key over 250 characters (mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH); a task's
# longest per-LF key is ``<task>.drift.lf_coverage_change.<lf>`` (jobs.changes.drift.metrics; the fit's
# ``<task>.lf_estimated_accuracy.<lf>``, jobs.runtime.tracking.log_task_fit, is shorter).
_MLFLOW_KEY_MAX = 250
_LONGEST_LF_METRIC = "drift.lf_coverage_change"


def _check_metric_keys(task: str, lf_names: Sequence[str]) -> None:
    """Refuse, before anything runs, LF names that would make one of the task's MLflow metric keys too long
    (MLflow would refuse it after the work, when the fit is logged)."""
    room = _MLFLOW_KEY_MAX - len(f"{task}.{_LONGEST_LF_METRIC}.")
    long = [n for n in lf_names if len(n) > room]
    if long:
        shown = ", ".join(repr(n) for n in long[:3]) + (f" and {len(long) - 3} more" if len(long) > 3 else "")
        raise ConfigError(
            f"LF name(s) {shown} are too long for the task's MLflow metric keys "
            f"('{task}.{_LONGEST_LF_METRIC}.<LF name>', at most {_MLFLOW_KEY_MAX} characters, so LF names of at most "
            f"{room}): shorten those names or the task name, or set mlflow.enabled to false"
        )


_WARNED: dict[tuple[int, str], weakref.ref] = {}


def _first_time(cfg: PipelineConfig, module: str) -> bool:
    """True the first time this config object's tasks are built with ``module`` failing (then remembered)."""
    key = (id(cfg), module)
    ref = _WARNED.get(key)
    if ref is not None and ref() is cfg:
        return False
    _WARNED[key] = weakref.ref(cfg)
    return True


def _check_tag_lists(lfs: LFConfig, tagged: list[tuple[TaskConfig, str | None]], by_task: dict[str, LFRegistry],
                     broken: dict[str, BrokenTask]) -> None:
    """Mark the tag tasks broken when ``multi_label.lfs.include`` / ``exclude`` name an LF none of them has (they
    select among the tag tasks' LFs, as ``tasks.<name>.lfs.include`` does among a task's)."""
    tag_tasks = [t.name for t, tag in tagged if tag is not None]
    if any(name in broken for name in tag_tasks):  # their LFs are not all known: the broken task's error says why
        return
    known = sorted({n for name in tag_tasks for n in by_task[name].names})
    reason = unknown_names_error({"multi_label.lfs.include": lfs.include, "multi_label.lfs.exclude": lfs.exclude},
                                 known, "the tag tasks' LFs")
    if reason:
        for name in tag_tasks:
            broken[name] = BrokenTask(name, reason, "multi_label.lfs", ("multi_label=null",))


def _all_names(by_task: dict[str, LFRegistry]) -> set[str]:
    return {n for r in by_task.values() for n in r.names}


def _own_lfs(t: TaskConfig) -> LFRegistry:
    """A task's registry holding the LFs listed under its own ``lfs`` (its label space fixed)."""
    own = t.lfs
    space = t.label_space
    if own.label_space is not None:  # was passed over: the task's label space is its own key
        raise ConfigError(f"tasks.{t.name}.lfs.label_space = {list(own.label_space)}: a task's label space is "
                          f"tasks.{t.name}.label_space; set it there and remove tasks.{t.name}.lfs.label_space")
    if own.modules:
        registry = load_registry(own.modules, label_space=space)
    elif space:
        registry = LFRegistry(check_label_space(space, owner=f"tasks.{t.name}.label_space"))
    else:
        raise ConfigError(f"task {t.name!r} has no label_space; set tasks.{t.name}.label_space (the class names)")
    for lf, origin in declared_lfs(own.declared, own.files, base=Path("."), key=f"tasks.{t.name}.lfs"):
        # the origin names the task already when it is a config entry (tasks.<name>.lfs.declared[i])
        registry.register(lf, origin=origin if origin.startswith("config tasks.") else f"task {t.name}: {origin}")
    return registry


def _route_shared_lfs(lfs: LFConfig, spaces: dict[str, tuple[str, ...] | None], by_task: dict[str, LFRegistry],
                      key: str) -> dict[str, tuple[str, tuple[str, ...], LFConfigError]]:  # fmt: skip
    """Give each LF of the top-level ``lfs.modules`` (``key``; or ``multi_label.lfs.modules``) to the task with its
    label space. ``spaces``: None for a broken task whose label space is not known (its LFs are dropped here);
    a broken task has no entry in ``by_task``. Returns the modules of ``lfs.modules`` that failed but whose file
    names one task's label space (:func:`jobs.broken_tasks.literal_label_space`): module -> (that task, the
    label space, the error); any other failing module raises."""
    if lfs.declared or lfs.files:
        raise ConfigError(
            "top-level lfs.declared / lfs.files have no label space to route them by when several tasks are "
            "configured; declare them under tasks.<name>.lfs.declared (or .files)"
        )
    if lfs.label_space is not None:
        raise ConfigError(f"lfs.label_space = {list(lfs.label_space)} is a single-task setting; with several tasks, "
                          f"set tasks.<name>.label_space")
    owners: dict[tuple[str, ...], list[str]] = {}
    for name, space in spaces.items():
        if space is not None:
            owners.setdefault(space, []).append(name)
    unknown = [name for name, space in spaces.items() if space is None]
    described = ", ".join(f"{n} {list(s)}" for n, s in spaces.items() if s is not None)
    failed: dict[str, tuple[str, tuple[str, ...], LFConfigError]] = {}
    for module in lfs.modules:
        try:
            found, module_space = module_lfs(module)
        except LFConfigError as err:
            if key != "lfs.modules":
                raise LFConfigError(describe(err, [module])) from err
            told = literal_label_space(module)
            if told is None or len(owners.get(told, [])) != 1:
                raise shared_module_error(err, module, key) from err
            failed[module] = (owners[told][0], told, err)
            continue
        unmatched: dict[str, list[str]] = {}
        for lf in found:
            space = tuple(lf.label_space) if lf.label_space is not None else module_space
            if space is None:
                raise ConfigError(f"LF {lf.name!r} (module {module}) has no label space: define LABEL_SPACE in the "
                                  f"module or give the LF label_space=")
            matches = owners.get(space, [])
            if not matches and unknown:  # maybe a broken task's: that task fails on its own
                unmatched.setdefault(str(list(space)), []).append(lf.name)
                continue
            if not matches:
                raise ConfigError(
                    f"LF {lf.name!r} (module {module}) has label space {list(space)}, which matches no task "
                    f"(tasks: {described}); add a task with that label_space or drop the LF"
                )
            if len(matches) > 1:
                raise ConfigError(
                    f"LF {lf.name!r} (module {module}) has label space {list(space)}, shared by tasks {matches}; "
                    f"list the module under the task it belongs to (tasks.<name>.lfs.modules)"
                )
            if lf.label_space is None:
                lf.label_space = space
            if matches[0] in by_task:  # not a broken task's
                by_task[matches[0]].register(lf, origin=module)
        for space, lf_names in unmatched.items():
            log.warning("LF(s) %s (module %s) have label space %s, which matches no task that can be built now; they "
                        "may belong to task %s, whose label space is not known while its LFs fail (set tasks.<name>."
                        "label_space to tell), so they are left out of this command", ", ".join(lf_names), module,
                        space, " or ".join(repr(n) for n in unknown))
    return failed


def task_config(cfg: PipelineConfig, task: Task) -> PipelineConfig:
    """The single-task config that reads one task (``--task``): its label space and gold, and table
    names suffixed ``_<task>`` for what it writes alone (its end model's predictions, its gold table).

    The task's labels themselves live in the one multi-task labels table (:mod:`jobs.multitask_labels`).
    """
    evaluation = cfg.evaluation
    if evaluation is not None:
        evaluation = replace(evaluation, gold_column=task.gold_column)
    return replace(
        cfg,
        tables=replace(cfg.tables, labels=task_table(cfg.tables.labels, task.name)),
        evaluation=evaluation,
        lfs=LFConfig(label_space=list(task.label_space)),
        tasks=[],
        multi_label=None,
    )


def task_source(source: Source, task: Task) -> Source:
    """``source`` with ``task``'s gold as its gold column (a derived class-name column for a tag)."""
    if not task.gold_column:
        return replace(source, gold_column=None)
    if task.gold_column not in source.df.columns:
        key = "multi_label.gold_column" if task.tag else f"tasks.{task.name}.gold_column"
        raise ConfigError(
            f"task {task.name!r}: gold column {task.gold_column!r} is not in {source.info.path} (its columns: "
            f"{', '.join(source.df.columns)}); fix {key}"
        )
    if task.tag is None:
        return replace(source, gold_column=task.gold_column)
    derived = f"__gold_{task.name}"
    return replace(source, df=source.df.withColumn(derived, _tag_gold(source, task)), gold_column=derived)


def _tag_gold(source: Source, task: Task) -> Column:
    """A tag task's gold class name per row: from the tag-list gold column (null where it is null)."""
    col = F.col(task.gold_column)
    dtype = source.df.schema[task.gold_column].dataType.simpleString()
    tags = col if dtype.startswith("array") else F.split(col, re.escape(task.separator))
    tags = F.transform(tags, lambda x: F.trim(x))
    absent, present = task.label_space
    return F.when(col.isNull(), F.lit(None)).when(F.array_contains(tags, task.tag), present).otherwise(absent)


def task_gold_ids(source: Source, task: Task) -> Column:
    """``task``'s gold class id per row (-1: none) as one expression over ``source.df``'s own columns
    (what :func:`jobs.delta_io.sources.gold_ids` gives on :func:`task_source`, without its derived column)."""
    if not task.gold_column:
        return F.lit(-1).cast("int")
    src = task_source(source, task)  # checks the column
    if task.tag is None:
        return gold_ids(src, tuple(task.label_space))
    return gold_ids_of(_tag_gold(source, task), StringType(), tuple(task.label_space))
