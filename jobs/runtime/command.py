"""What every lakelabel command shares: :class:`Command`, options, the parser, logging, run ids, config, Spark.

A job module declares its command as a :class:`Command` and runs it with :func:`main`; ``jobs/cli.py``
collects every job's command under one ``lakelabel`` parser with :func:`main_many`. Nothing here
imports a job module, so a job's ``__main__`` never imports the CLI (no import cycle).

Exit codes and the one line a failure prints: :mod:`jobs.runtime.exits`; SIGTERM, Ctrl-C and the
table commits a signal cannot take back: :mod:`jobs.runtime.signals`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.runtime import exits
from jobs.runtime.exits import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, guarded
from jobs.runtime import runs  # runs.X at call time, as tests patch them
from jobs.runtime import signals
from jobs.runtime.config import _URI
from jobs.runtime.signals import install_signal_handlers
from lf_library.errors import ConfigError

log = logging.getLogger("jobs.cli")

# Commands that take a config with several tasks (jobs/multitask.py; --task: jobs/task_views.py);
# the others read one task.
MULTITASK_COMMANDS = frozenset({"run", "apply", "demo", "analyze", "report", "annotate", "train", "explain", "verify",
                                "gold import", "gold status"})
# What to do instead, for the commands that refuse a multi-task config with more to say than the default.
_INSTEAD = {
    "diff": "compare one task's labels of two runs by reading <tables.labels>_tasks at their versions "
            "(jobs.multitask_labels.task_labels(spark, cfg, TASK, version=V)), or see why a row has its label with "
            "`lakelabel explain --task NAME --row-id ID`",
    "aggregate": "`lakelabel run` aggregates, fits and writes every task from one pass",
    "fit": "`lakelabel run` aggregates, fits and writes every task from one pass",
    "write": "`lakelabel run` aggregates, fits and writes every task from one pass",
}


@dataclass(frozen=True)
class Command:
    """One ``lakelabel`` subcommand.

    Parameters
    ----------
    name : str
        Subcommand name (``apply``, ``run``, ...).
    help : str
        One line for ``lakelabel --help``.
    run : callable
        ``run(args, cfg, run_id, spark) -> dict``: the summary. ``spark`` is None when
        ``needs_spark`` is false.
    add_arguments : callable, optional
        Adds the command's own options to its parser.
    needs_spark : bool or callable
        Whether to start Spark, or ``needs_spark(args, cfg) -> bool`` deciding it after the
        precheck (``gold status`` reads a local gold table without Spark).
    needs_config : bool
        Whether to load ``--config`` (the demo builds its own config).
    make_config : callable, optional
        ``make_config(args) -> PipelineConfig`` instead of loading ``--config``.
    stage_summary : bool
        Write ``<stage>_summary.json`` into the run folder (the stage jobs).
    plain : callable, optional
        ``plain(args) -> int`` for commands outside the pipeline (``package``): no config, no run id.
    """

    name: str
    help: str
    run: Callable[..., dict[str, Any]] | None = None
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None
    needs_spark: bool | Callable[[argparse.Namespace, Any], bool] = True
    needs_config: bool = True
    make_config: Callable[[argparse.Namespace], Any] | None = None
    stage_summary: bool = False
    plain: Callable[[argparse.Namespace], int] | None = None
    # False: ``--run-id`` names an existing run to read, and None (the latest) is passed on when absent.
    new_run_id: bool = True
    # ``precheck(args, cfg)``: checks that must fail before Spark starts (an output path, say).
    precheck: Callable[[argparse.Namespace, Any], None] | None = None
    # True: the command reads ``source``, whose id and gold columns are checked before Spark starts.
    reads_source: bool = False
    # True: the command scores on ``evaluation`` (when it has a gold column): its columns are checked too.
    reads_evaluation: bool = False
    # ``done(summary) -> str``: the line printed on success.
    done: Callable[[dict[str, Any]], str] | None = None
    # ``--run-id``'s help when the defaults (a new run / an existing run to read) do not say what it does here.
    run_id_help: str | None = None
    # True: the command logs to MLflow (with mlflow.enabled); its store is checked before anything runs.
    logs_to_mlflow: bool = False
    # The tables (``tables.<name>``) the command writes: their folders, when they exist, are checked writable
    # before anything runs (an unwritable labels folder failed ``run`` after its whole apply).
    writes: tuple[str, ...] = ()


_NEW_RUN_ID_HELP = "run id (default: a new one); rerunning with the same id is a no-op per stage"
_READ_RUN_ID_HELP = "the run to read (default: the run that wrote the latest labels)"


def add_common(p: argparse.ArgumentParser, *, config_required: bool = True, run_id_help: str = _NEW_RUN_ID_HELP) -> None:
    """The options every pipeline command takes."""
    if config_required:
        p.add_argument("--config", required=True, help="pipeline YAML, e.g. conf/youtube.yaml")
    p.add_argument("--env", help="environment overlay: env/<ENV>.yaml beside the config, else lakelabel's "
                                 "conf/env/<ENV>.yaml (local, cluster, databricks)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set apply.max_error_rate=0.1 (repeatable)")
    p.add_argument("--run-id", help=run_id_help)
    p.add_argument("--summary-json", metavar="PATH", help="write a machine-readable run summary here")
    p.add_argument("--master", help="Spark master, e.g. local[2] or spark://127.0.0.1:7077")
    add_verbosity(p)


def add_verbosity(p: argparse.ArgumentParser) -> None:
    one = p.add_mutually_exclusive_group()  # both at once is a usage error (exit 2), not one of them silently
    one.add_argument("-v", "--verbose", action="store_true", help="debug logs and full tracebacks")
    one.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def _add_command(p: argparse.ArgumentParser, cmd: Command) -> None:
    if cmd.plain is not None:
        add_verbosity(p)
    else:
        run_id_help = cmd.run_id_help or (_NEW_RUN_ID_HELP if cmd.new_run_id else _READ_RUN_ID_HELP)
        add_common(p, config_required=cmd.needs_config and cmd.make_config is None, run_id_help=run_id_help)
    cmd.add_arguments(p)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the handler was made.

    A notebook or a test that swaps ``sys.stderr`` (and later closes its replacement) never leaves
    lakelabel logging into a closed stream.
    """

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    if verbose:
        os.environ.setdefault("LAKELABEL_SPARK_LOG_LEVEL", "WARN")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    for name in ("jobs", "lf_library", "labelmodel"):
        logging.getLogger(name).setLevel(level)
    for noisy in ("py4j", "mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # mlflow sets its own loggers' level when first imported (a model LF's store, say): its INFO lines
    # ("Creating initial MLflow database tables...") and warnings (the Databricks SDK's "Failed to create
    # databricks SDK workspace client" before the error that says the same) stay out unless --verbose.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "ERROR")
    _quiet_query_context_loggers(verbose)


def _quiet_query_context_loggers(verbose: bool) -> None:
    """pyspark logs every analysis error it raises (an unknown column, say) as a JSON record with the
    JVM stack trace, to stderr, before lakelabel can word it as its one line; only --verbose keeps it."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pyspark missing (the install line is the error) or older than its logger
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        # PySparkLogger.getLogger: the logger must be pyspark's class, which takes its extra keywords.
        PySparkLogger.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def execute(cmd: Command, args: argparse.Namespace) -> int:
    """Load the config, start Spark if needed, run the command, write its summaries."""
    if cmd.plain is not None:
        return cmd.plain(args)
    started = time.perf_counter()
    summary_json = getattr(args, "summary_json", None)
    # A path ending in / names a folder (refused below); Path() drops the slash, which would delete a file there.
    try:
        if summary_json and not names_folder(summary_json) and Path(summary_json).is_file():
            Path(summary_json).unlink()  # an earlier run's summary must not pass for this run's if this one fails
    except OSError as err:  # a file that cannot be removed, or a path the file system refuses (a name too long)
        raise ConfigError(f"--summary-json {summary_json}: cannot replace the file there ({err.strerror}); "
                          "choose a writable path") from None
    from jobs.runtime.config_loading import load_config

    if args.run_id is not None:
        run_id = runs.check_run_id(args.run_id)
    else:
        run_id = runs.new_run_id() if cmd.new_run_id else None
    if cmd.make_config is not None:
        cfg = cmd.make_config(args)
    else:
        cfg = load_config(args.config, env=args.env, overrides=args.overrides)

    # The lakehouse and run folders this command would create (the run folder's chain holds the lakehouse's).
    created = _missing_folders(runs.run_dir(cfg.lakehouse, run_id, create=False) if run_id else Path(cfg.lakehouse))
    runs.check_lakehouse(cfg.lakehouse, {name: cfg.table_path(name) for name in ("votes", "labels")},
                         writes=_written_paths(cmd, cfg, args))
    # The run a failure summary names (write_failure_summary): the --run-id given; a generated id only once the
    # command's work begins (_execute_in), as a failed precheck leaves no folder, table or MLflow run under it.
    args.resolved_run_id = args.run_id and run_id
    signals.note_run(run_id)  # and for the exit line
    try:
        return _execute_in(cmd, args, cfg, run_id, started)
    except BaseException:
        # A failed command leaves no empty folder it created behind (its run folder, a new lakehouse).
        for folder in created:
            if not folder.exists():  # failed before the command made it
                continue
            try:
                folder.rmdir()
            except OSError:  # not empty: it and its parents stay
                break
        raise


def _written_paths(cmd: Command, cfg: Any, args: argparse.Namespace) -> list[Path]:
    """What ``cmd`` writes inside the lakehouse besides its root: the run folders, the folders of the tables it
    writes (a votes table's row hashes too) and their writers' lock folders, and the lakehouse's MLflow store."""
    lakehouse = Path(cfg.lakehouse).resolve()
    runs_folder = runs.run_dir(cfg.lakehouse, "x", create=False).parent  # a new run's, or the run a command reads
    paths = [runs_folder.parent, runs_folder]
    for name in cmd.writes:
        for table in _tables_written(cfg, name, getattr(args, "task", None)):
            if _URI.match(table):  # an object store's (s3://, abfss://, dbfs:/): nothing to probe here
                continue
            for folder in (table, *([table + "_row_hashes"] if name == "votes" else [])):
                paths += [Path(folder), Path(folder) / "_lakelabel_writers"]
    if cmd.logs_to_mlflow and getattr(cfg, "mlflow", None) is not None and cfg.mlflow.enabled:
        from jobs.runtime.tracking import tracking_uri

        uri = tracking_uri(cfg)
        if uri.startswith("sqlite:///"):
            db = Path(uri[len("sqlite:///"):].split("?", 1)[0])
            paths += [db.parent, db, Path(f"{db}.lock")]
    return [p for p in paths if p == lakehouse or lakehouse in p.parents]


def _tables_written(cfg: Any, name: str, task: str | None) -> list[str]:
    """The paths of table ``name`` a command writes: with several tasks, the labels go to ``<labels>_tasks`` and
    each task (``--task``'s alone when given) has its own ``<gold>_<task>`` and ``<predictions>_<task>``."""
    table = cfg.table_path(name)
    if not getattr(cfg, "tasks", None) and getattr(cfg, "multi_label", None) is None:
        return [table]
    from jobs.tasks import task_configs, task_table

    if name == "labels":
        return [task_table(table, "tasks")]
    if name in ("gold", "predictions"):
        try:
            names = [t.name for t, _ in task_configs(cfg)]
        except ConfigError:  # the command says what is wrong with the tasks, in its own words
            return []
        return [task_table(table, n) for n in names if task is None or n == task]
    return [table]


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    path = path.resolve()
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _execute_in(cmd: Command, args: argparse.Namespace, cfg: Any, run_id: str | None, started: float) -> int:

    if (getattr(cfg, "tasks", None) or getattr(cfg, "multi_label", None)) and cmd.name not in MULTITASK_COMMANDS:
        instead = _INSTEAD.get(cmd.name, "use `lakelabel run` for the tasks")
        raise ConfigError(
            f"lakelabel {cmd.name} reads one task, but the config declares several (tasks / multi_label) and "
            f"lakelabel {cmd.name} takes no --task option: {instead}; analyze, report, annotate, train, explain, verify and gold work with --task NAME "
            f"(README \"Several tasks at once\")"
        )
    if cmd.logs_to_mlflow and getattr(cfg, "mlflow", None) is not None:
        from jobs.runtime.tracking import check_server, check_store_here

        check_store_here(cfg)  # a store copied with its lakehouse would log into the original
        # Before the command's precheck, whose model LFs resolve their models on the same server.
        check_server(cfg, cmd.name)  # a tracking server that is down fails the command before its work
    if cmd.precheck is not None:
        cmd.precheck(args, cfg)
    if cmd.reads_source and getattr(cfg, "source", None) is not None:
        from jobs.delta_io.sources import precheck_source_columns, precheck_source_path

        precheck_source_columns(cfg.source)
        several = bool(cfg.tasks or cfg.multi_label)
        if several:  # each task's gold column, in the source and (below) the evaluation source
            from jobs.delta_io.sources import precheck_columns
            from jobs.tasks import task_gold_keys

            precheck_columns(cfg.source, task_gold_keys(cfg))
        ev = getattr(cfg, "evaluation", None)
        # One task: evaluation.gold_column is read as is (several tasks read each task's gold column).
        if cmd.reads_evaluation and ev is not None and ev.gold_column and not several:
            precheck_source_columns(ev, role="evaluation")
        elif cmd.reads_evaluation and ev is not None:
            precheck_source_path(ev, role="evaluation")
            if several:
                precheck_columns(ev, task_gold_keys(cfg))
        if cmd.reads_evaluation and ev is not None and not _evaluation_has_gold(cfg):
            log.warning("%s", unscored_evaluation(cfg, cmd.name))
    if args.summary_json:
        check_out_file(Path(args.summary_json), "--summary-json", "summary.json", given=args.summary_json)
    spark = None
    wants_spark = cmd.needs_spark(args, cfg) if callable(cmd.needs_spark) else cmd.needs_spark
    if wants_spark:
        from jobs.runtime.session import get_spark

        spark = get_spark(f"lakelabel-{cmd.name}", master=args.master or cfg.spark.master, conf=cfg.spark.conf)
        install_signal_handlers()  # over PySpark's SIGINT handler
    args.resolved_run_id = run_id
    if spark is not None:
        from jobs.runtime.progress import Heartbeat

        with Heartbeat(spark, cmd.name, executor_wait=cfg.spark.executor_wait_seconds):
            summary = cmd.run(args, cfg, run_id, spark)
    else:
        summary = cmd.run(args, cfg, run_id, spark)
    # The whole command from its config's loading: prechecks, Spark's start-up and the job.
    summary["seconds"] = round(time.perf_counter() - started, 3)
    if cmd.stage_summary:
        path = runs.run_dir(cfg.lakehouse, run_id) / f"{cmd.name}_summary.json"
        # A retry that had nothing to do keeps the record of the attempt that did the work (the tables it wrote):
        # diff, drift, explain and verify find the run by it.
        if not (summary.get("skipped") and path.is_file()):
            runs.write_json(path, summary)
    if args.summary_json:
        path = Path(args.summary_json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            runs.write_json(path, summary)
        except OSError as err:  # a disk that filled during the run: the work is committed, the summary is not
            missing = ConfigError(
                f"--summary-json {path}: cannot write the summary ({err.strerror or err}); run {run_id} did its work "
                f"and committed it, only this file is missing: fix the path or free space, then rerun with "
                f"--run-id {run_id}"
            )
            missing.says_what_stands = True  # the exit line adds no second "it committed ..., rerun" (exits)
            raise missing from err
    if cmd.stage_summary:
        print(f"lakelabel {cmd.name}: run {run_id} done")
    if cmd.done is not None:
        print(cmd.done(summary))
    return EXIT_OK


def _evaluation_has_gold(cfg: Any) -> bool:
    """Whether the ``evaluation:`` source can be scored: one task reads ``evaluation.gold_column``,
    several tasks read each task's gold column."""
    if cfg.tasks or cfg.multi_label:
        return any(t.gold_column for t in cfg.tasks) or bool(cfg.multi_label and cfg.multi_label.gold_column)
    return bool(cfg.evaluation.gold_column)


def unscored_evaluation(cfg: Any, command: str) -> str:
    """The warning for an ``evaluation:`` source with no gold column to score it against."""
    path = cfg.evaluation.path
    where = ", ".join(path) if isinstance(path, list) else path or "(no path)"
    if cfg.tasks or cfg.multi_label:
        fix = "set tasks.<name>.gold_column (or multi_label.gold_column) to the column of true labels"
    else:
        fix = "set evaluation.gold_column to its column of true labels"
    return (f"evaluation: {where} is configured but has no gold column, so lakelabel {command} does not score "
            f"on it; {fix}, or drop the evaluation section")


def names_folder(given: str) -> bool:
    """Whether a path as typed ends in ``/``: a folder, which ``Path`` would turn into a file's name."""
    return given.endswith(("/", os.sep))


def check_out_file(path: Path, what: str, example: str, given: str | None = None) -> None:
    """``path`` can be written as a file: it is not a folder, and its nearest existing parent is a writable folder.

    Missing folders on the way are created when the file is written (as ``mkdir -p``); ``what`` names the
    option (``--out``), ``example`` a file name to suggest when ``path`` is a folder, ``given`` the option as
    typed (``Path`` drops a trailing ``/``, which names a folder too). Checked before Spark starts.
    """
    if path.is_dir() or (given is not None and names_folder(given)):
        raise ConfigError(f"{what} {given or path} is a folder; pass a file path such as {path / example}")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is a file, not a folder; choose a path in a folder")

    try:
        runs.probe_write(probe)
    except OSError as err:
        raise ConfigError(f"{what} {path}: the folder {probe} is not writable ({err.strerror or err}); "
                          "choose a writable path") from None


def exit_process(code: int) -> None:
    """End a lakelabel program with ``code``, without the interpreter's teardown.

    A process that read Delta tables through deltalake (delta-rs) and pyarrow can abort while the
    interpreter shuts down, after the work is done: ``terminate called without an active
    exception``, exit code 134 (a native thread pool torn down while a thread is still joinable;
    delta-rs #2184; see the README, "Reading the tables"). An orchestrator would then see a failed
    run whose tables were written. So the programs run Python's own exit handlers (Spark's,
    logging's, temporary folders), flush, and leave with ``os._exit(code)``, which skips only the
    native teardown where the abort happens. Under a Databricks runtime, whose task runner may
    call the entry point in its own process, it raises ``SystemExit`` as before.
    """
    if "DATABRICKS_RUNTIME_VERSION" in os.environ:
        raise SystemExit(code)
    import atexit

    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - an exit handler's failure must not change the exit code
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line and exit code 2, like every input error:
    ``lakelabel: error: gold import: argument --split: invalid choice: ...; see lakelabel gold import --help``.
    Options are never abbreviated (``--row`` is not ``--rows``): a scheduled command says what it means."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        command = self.prog.removeprefix("lakelabel").strip()  # every error line starts "lakelabel: error:"
        where = f"{command}: " if command else ""
        line = f"lakelabel: error: {where}{message}; see {self.prog} --help"
        sys.stderr.write(line + "\n")
        raise UsageExit(line, command or None, takes_summary_json=_takes_summary_json(self))


def _takes_summary_json(parser: argparse.ArgumentParser) -> bool:
    """Whether the command ``parser`` reads has ``--summary-json``; for a command group (``gold``) or the top
    parser (no command known yet), whether one of the commands it leads to has it."""
    for action in parser._actions:
        if "--summary-json" in action.option_strings:
            return True
        if isinstance(action, argparse._SubParsersAction):
            return any(_takes_summary_json(p) for p in action.choices.values())
    return False


class UsageExit(SystemExit):
    """Exit code 2 from :class:`OneLineParser`: the command line was refused. ``line``: the stderr line;
    ``command``: the command whose parser refused it (None: the top parser, no command known);
    ``takes_summary_json``: whether that command (or one it leads to) has ``--summary-json``."""

    def __init__(self, line: str, command: str | None, *, takes_summary_json: bool = True) -> None:
        super().__init__(EXIT_INPUT)
        self.line = line
        self.command = command
        self.takes_summary_json = takes_summary_json


def _option_values(words: Sequence[str], option: str) -> list[str]:
    """The values ``option`` is given in ``words`` (``--opt VALUE`` or ``--opt=VALUE``), in order; a word
    that starts with ``-`` after it is the next option, not its value (argparse reads it so too)."""
    values = []
    for i, word in enumerate(words):
        if word == option and i + 1 < len(words) and not words[i + 1].startswith("-"):
            values.append(words[i + 1])
        elif word.startswith(option + "="):
            values.append(word.split("=", 1)[1])
    return values


@contextlib.contextmanager
def _stale_summary_dropped(argv: Sequence[str] | None):
    """A command line argparse refuses (exit 2) still deletes the file its --summary-json names, and gets
    the failure summary every failed command writes there (:func:`write_failure_summary`): an orchestrator
    always finds this run's outcome, never an earlier run's summary. Nothing is written when the error is
    about ``--summary-json`` itself (say, no value), or the command has no ``--summary-json`` (``package``:
    whatever its error, a summary would tell a caller the option worked); given twice, the last value is the
    path, as for argparse."""
    try:
        yield
    except SystemExit as err:
        if err.code == EXIT_INPUT:
            words = list(sys.argv[1:] if argv is None else argv)
            paths = _option_values(words, "--summary-json")
            for path in paths:
                with contextlib.suppress(OSError):
                    if not names_folder(path) and Path(path).is_file():
                        Path(path).unlink()
            if (paths and paths[-1] and isinstance(err, UsageExit) and err.takes_summary_json
                    and "argument --summary-json:" not in err.line):  # its own error: no value
                run_ids = _option_values(words, "--run-id")
                given = argparse.Namespace(summary_json=paths[-1], run_id=run_ids[-1] if run_ids else None)
                write_failure_summary(given, err.command, EXIT_INPUT, error=err.line)
        raise


def write_failure_summary(args: argparse.Namespace, command: str | None, code: int, *,
                          error: str | None = None) -> None:  # fmt: skip
    """After a failed command, ``--summary-json`` holds ``status`` (failed, interrupted, terminated), the exit
    code and the error line, so an orchestrator that keeps the file has the reason next to the exit code.
    ``error``: the line (default: the one the guarded command failed with, :func:`jobs.runtime.exits.last_error`).
    Best effort: a path that cannot be written (maybe the failure itself) stays as it is, and a second stderr line
    says so unless the failure's own line named the path."""
    path = getattr(args, "summary_json", None)
    if code == EXIT_OK or not path:
        return
    status = {EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "terminated"}.get(code, "failed")
    last = exits.last_error() if error is None else error
    doc = {"command": command, "run_id": getattr(args, "resolved_run_id", getattr(args, "run_id", None)),
           "status": status, "exit_code": code, "error": last}
    try:
        if Path(path).is_dir() or names_folder(path):  # a folder: the failure said so
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        runs.write_json(Path(path), doc)
    except OSError as err:
        if f"--summary-json {path}" not in (last or ""):
            print(f"lakelabel: the failure summary --summary-json {path} was not written either "
                  f"({err.strerror or err})", file=sys.stderr)


def main(cmd: Command, argv: Sequence[str] | None = None) -> int:
    """Run one job module as a program (``spark-submit jobs/apply_lfs.py --config ...``)."""
    parser = OneLineParser(prog=f"lakelabel {cmd.name}", description=cmd.help, epilog=EXIT_CODES_HELP)
    _add_command(parser, cmd)
    with _stale_summary_dropped(argv):
        args = parser.parse_args(argv)
    debug = args.verbose or os.environ.get("LAKELABEL_DEBUG") == "1"
    setup_logging(debug, args.quiet)
    code = guarded(lambda: execute(cmd, args), debug)
    write_failure_summary(args, cmd.name, code)
    return code


def package_version() -> str:
    """The installed lakelabel's version (``lakelabel --version``); "unknown" when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lakelabel")
    except PackageNotFoundError:  # run from a source tree without `pip install`
        return "unknown"


# Every command's --help ends with this (README "Command line" has the table).
EXIT_CODES_HELP = ("exit codes: 0 success, the output can be trusted; 2 bad input, config, LF or command line, "
                   "or a full or unwritable folder (one line naming it and the fix; a retry fails the same way); "
                   "3 transient (a retry may "
                   "succeed); 1 unexpected (-v for the traceback); 130/143 interrupted/terminated (the tables "
                   "hold what they held before).")
GROUP_HELP = {"gold": "the gold labels people gave: import an annotation file, or show them per split and class"}


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The ``lakelabel`` parser: a subcommand per command, each with its options.

    A name with a space (``gold import``) is an action of a command group (``lakelabel gold import``).
    """
    parser = OneLineParser(prog="lakelabel", description="Programmatic labeling as Spark jobs over Delta tables.",
                           epilog=f"{EXIT_CODES_HELP} Each command's options: lakelabel COMMAND --help.")
    parser.add_argument("--version", action="version", version=f"lakelabel {package_version()}")
    parser.command_parsers = {}  # command name -> its parser, to word an error about its arguments
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for cmd in commands:
        group, _, action = cmd.name.partition(" ")
        if action:
            if group not in groups:
                g = sub.add_parser(group, help=GROUP_HELP.get(group, "actions"),
                                   description=f"lakelabel {group} ACTION: {GROUP_HELP.get(group, 'actions')}",
                                   epilog=EXIT_CODES_HELP)
                groups[group] = g.add_subparsers(dest=f"{group}_action", required=True, metavar="ACTION")
            p = groups[group].add_parser(action, help=cmd.help, description=cmd.help, epilog=EXIT_CODES_HELP)
        else:
            p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, epilog=EXIT_CODES_HELP)
        _add_command(p, cmd)
        p.set_defaults(command_name=cmd.name)
        parser.command_parsers[cmd.name] = p
    return parser


def _check_command_first(parser: Any, argv: list[str]) -> None:
    """``lakelabel -v run ...``: the options belong to the command, so say where they go (argparse
    would call ``-v`` an unrecognized argument of ``run``, or ``--run-id``'s value an invalid command).
    Those the command does not take are unrecognized arguments of it, as they would be after it."""
    if not argv or {"-h", "--help"} & set(argv):
        return
    groups = {name.split(" ")[0]: name for name in parser.command_parsers}
    if argv[0] in groups and " " in groups[argv[0]] and len(argv) > 1 and argv[1].startswith("-"):
        return _check_action_first(parser, argv)
    if not argv[0].startswith("-"):
        return
    # A word right after an option that takes a value is that value (``--run-id apply run``).
    valued = {flag for p in parser.command_parsers.values() for action in p._actions if action.nargs != 0
              for flag in action.option_strings}
    at = next((i for i, word in enumerate(argv) if word in groups and (i == 0 or argv[i - 1] not in valued)), None)
    if at is None:
        return
    words = argv[at:at + 1]
    if " " in groups[argv[at]]:  # a command group: its action follows, if it was given
        action = argv[at + 1] if at + 1 < len(argv) else ""
        words = [argv[at], action if f"{argv[at]} {action}" in parser.command_parsers else "ACTION"]
    rest = argv[at + len([w for w in words if w != "ACTION"]):]
    # The options before it that the command (any action of the group) does not take would be refused after
    # it too (``--summary-json`` of ``package``): refused as argparse would, not moved into a hint that fails.
    name = " ".join(words)
    targets = ([p for n, p in parser.command_parsers.items() if n.startswith(f"{words[0]} ")] if "ACTION" in words
               else [parser.command_parsers[name]])
    known = {flag for p in targets for action in p._actions for flag in action.option_strings}
    moved: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < at:
        flag = argv[i].split("=", 1)[0]
        is_unknown = flag.startswith("-") and flag not in known
        # Its value follows: an option that takes one, or an unknown one (argparse lists the word with it).
        value = ((flag in valued or is_unknown) and "=" not in argv[i] and i + 1 < at
                 and not argv[i + 1].startswith("-"))
        (unknown if is_unknown else moved).extend(argv[i:i + 1 + value])
        i += 1 + value
    # A group without its action (``lakelabel -q gold``) is refused by the group's parser: the summary and the
    # error name the command the line was for (``gold``), as ``lakelabel gold -q`` does.
    refused = parser.command_parsers.get(name) or _group_parser(parser, words[0])
    hint = shlex.join(["lakelabel", *words, *moved, *rest])  # the command to run instead
    if not unknown:
        refused.error(f"options go after the command: {hint}")
    also = f"; options go after the command: {hint}" if moved else ""
    refused.error(f"unrecognized arguments: {' '.join(unknown)}{also}")


def _check_action_first(parser: Any, argv: list[str]) -> None:
    """``lakelabel gold --config c.yaml import``: argparse took the option's value for the action (``invalid
    choice: 'c.yaml'``); say where the options go, or that the action is missing."""
    group = argv[0]
    actions = {name.split(" ", 1)[1]: p for name, p in parser.command_parsers.items() if name.startswith(f"{group} ")}
    valued = {flag for p in actions.values() for action in p._actions if action.nargs != 0
              for flag in action.option_strings}
    at = next((i for i in range(2, len(argv)) if argv[i] in actions and argv[i - 1] not in valued), None)
    if at is None:
        hint = shlex.join(["lakelabel", group, "ACTION", *argv[1:]])
        _group_parser(parser, group).error(f"the action goes first: {hint} (ACTION: {', '.join(sorted(actions))})")
    refused = actions[argv[at]]
    known = {flag for action in refused._actions for flag in action.option_strings}
    unknown = [word for word in argv[1:at] if word.startswith("-") and word.split("=", 1)[0] not in known]
    if unknown:  # the hint would be refused too
        refused.error(f"unrecognized arguments: {' '.join(unknown)}")
    hint = shlex.join(["lakelabel", group, argv[at], *argv[1:at], *argv[at + 1:]])
    refused.error(f"options go after the action: {hint}")


def _group_parser(parser: argparse.ArgumentParser, group: str) -> argparse.ArgumentParser:
    """The parser of command group ``group`` (``gold``) under the top ``parser``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[group]


def main_many(commands: Sequence[Command], argv: Sequence[str] | None = None) -> int:
    """``lakelabel COMMAND ...``: one parser with a subcommand per job."""
    parser = build_parser(commands)
    with _stale_summary_dropped(argv):
        _check_command_first(parser, list(sys.argv[1:] if argv is None else argv))
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # argparse words it for the top parser ("see lakelabel --help"); the command's help says more
            parser.command_parsers[args.command_name].error(f"unrecognized arguments: {' '.join(unknown)}")
    by_name = {cmd.name: cmd for cmd in commands}
    debug = args.verbose or os.environ.get("LAKELABEL_DEBUG") == "1"
    setup_logging(debug, args.quiet)
    code = guarded(lambda: execute(by_name[args.command_name], args), debug)
    write_failure_summary(args, args.command_name, code)
    return code
