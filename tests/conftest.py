"""Shared fixtures: one local SparkSession for the whole suite, paths to the shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# Opt-in: Maven coordinates of the Delta Spark jars (e.g. io.delta:delta-spark_4.1_2.13:4.4.1) to
# run the cluster_native tests on a machine that reaches Maven Central (plus `pip install
# delta-spark`). Unset, the suite runs without Delta Spark, as it must where Maven is unreachable.
DELTA_PACKAGES_ENV = "LAKELABEL_TEST_DELTA_PACKAGES"

# The suite's JVMs (this session's, every lakelabel and spark-submit it starts, the standalone master
# and worker) run small jobs for seconds to minutes. On 2 cores, C2 compiling Spark's code in the
# background costs more CPU than it saves: with the C1 compiler alone and the serial collector, the
# pipeline, analyze and two CLI drill tests took 147 s instead of 168 s on a quiet machine, the CPUs
# 71% busy instead of 85% (benchmarks/RESULTS.md, session 19). Set here, before any JVM starts, for
# every child process; a SPARK_SUBMIT_OPTS of your own wins (an empty one keeps the JVM's defaults).
# The executors of the standalone-cluster tests keep the JVM's defaults. C1 alone shrinks the JVM's
# default code cache from 240 MB to 48 MB, which the session's JVM outgrew two minutes into a run
# ("CodeCache is full", then Spark jobs failing with "Out of space in CodeCache for method handle
# intrinsic"): the code cache keeps the tiered default.
TEST_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=240m"
_SET_BY_SUITE = {name: name not in os.environ for name in ("SPARK_SUBMIT_OPTS", "SPARK_DAEMON_JAVA_OPTS")}
os.environ.setdefault("SPARK_SUBMIT_OPTS", TEST_JVM_OPTS)
os.environ.setdefault("SPARK_DAEMON_JAVA_OPTS", TEST_JVM_OPTS)
# ... and they map Spark's classes from one archive instead of loading them from the jars
# (tests/jvm_archive.py); LAKELABEL_TEST_JVM_ARCHIVE=0 turns that off.
JVM_ARCHIVE_ENV = "LAKELABEL_TEST_JVM_ARCHIVE"


def delta_test_conf() -> dict[str, str]:
    """Spark conf that adds Delta Spark to the test session when ``LAKELABEL_TEST_DELTA_PACKAGES`` is set."""
    packages = os.environ.get(DELTA_PACKAGES_ENV, "").strip()
    if not packages:
        return {}
    return {
        "spark.jars.packages": packages,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }


def pytest_configure(config):
    """pyspark marks its query-context loggers (``PySparkLogger``) non-propagating when it logs an analysis error;
    pytest then attaches its log-capture handlers to every non-propagating logger at each test phase, and
    ``PySparkLogger.addHandler`` sets its JSON formatter on the handler it is given. From then on every test's
    ``caplog.text`` in that process was JSON, quotes escaped: a test's result depended on which tests ran before it
    in its process (found when the suite first ran in two workers). pytest's own handlers keep pytest's format."""
    try:
        from pyspark.logger.logger import PySparkLogger
    except ImportError:  # no pyspark, or one without the logger
        return
    import logging

    json_add = PySparkLogger.addHandler

    def add_handler(self, handler):
        if type(handler).__module__ == "_pytest.logging":
            logging.Logger.addHandler(self, handler)
        else:
            json_add(self, handler)

    PySparkLogger.addHandler = add_handler


#: The tests the session starts something for before they run (:func:`pytest_sessionstart` under pytest-xdist).
LABEL_STUDIO_TEST = "tests/jobs/test_label_studio.py"
MASTER_DOWN_TEST = "tests/jobs/test_session.py::test_spark_submit_to_a_master_that_is_down_is_transient_exit_3"


#: The suite's longest test files, longest first (seconds summed over their tests in session 39's run on 2 cores,
#: benchmarks/RESULTS.md). Under ``--dist loadfile`` a worker takes the next file when it is done with one; in
#: pytest-xdist's own order (the files with the most tests first) the few-test files that run for minutes (the
#: cluster, the tracking server) came last, and one worker ran them while the other had nothing left to take. Listed
#: files go first (the longest first: the shortest are left for the end); the rest keep the collection order, so a file
#: missing here only starts later than it could. Label Studio's waits for its install (in the background from the
#: session's start): it is not among the first.
LONGEST_FILES = (
    "tests/test_drills_cli.py", "tests/jobs/test_incremental_masks.py", "tests/test_cluster.py",
    "tests/jobs/test_train.py", "tests/jobs/test_people.py", "tests/jobs/test_drills.py", "tests/jobs/test_multitask.py",
    "tests/jobs/test_tracking_server.py", "tests/jobs/test_pipeline.py", "tests/jobs/test_incremental.py",
    "tests/test_orchestration.py", "tests/jobs/test_label_studio.py", "tests/test_notebooks.py",
    "tests/test_end_to_end.py", "tests/jobs/test_knowledge_lfs.py", "tests/jobs/test_source_precheck.py",
    "tests/jobs/test_analyze.py", "tests/jobs/test_report.py", "tests/jobs/test_task_commands.py",
    "tests/jobs/test_task_masks.py", "tests/jobs/test_compaction.py", "tests/jobs/test_session.py",
    "tests/jobs/test_diff_explain.py", "tests/jobs/test_delta.py", "tests/jobs/test_apply_masks.py",
)


def _longest_files_first(items: list) -> None:
    """Reorder ``items`` (in place, each file's tests kept together and in order) as :data:`LONGEST_FILES` says."""
    rank = {path: i for i, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


@pytest.hookimpl(trylast=True)  # after -k / -m deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    """Start in the background what a collected test would otherwise wait for: Label Studio's install
    and start (tests/label_studio_server.py), and a spark-submit that waits on a master that is down.

    Both overlap the tests before theirs. Under pytest-xdist (the suite's default, two workers) the
    controller starts them before the workers (:func:`pytest_sessionstart`); a worker starts one itself
    only when its test asks and the controller did not.
    """
    _longest_files_first(items)  # in the workers too: the controller schedules their collection's order
    if hasattr(config, "workerinput"):
        return
    if any(item.path.name == "test_label_studio.py" for item in items) and not config.option.collectonly:
        from tests import label_studio_server

        label_studio_server.start_background()
    _use_jvm_archive(config, any(item.get_closest_marker("spark") or item.get_closest_marker("jvm") for item in items))
    # The same for the spark-submit to a master that is down: ~70 s of Spark's client waiting.
    if any(item.name == "test_spark_submit_to_a_master_that_is_down_is_transient_exit_3" for item in items) \
            and not config.option.collectonly:
        from tests.jobs import test_session

        test_session.start_master_down(config._tmp_path_factory.mktemp("master-down"))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own starts the workers, which inherit the environment
def pytest_sessionstart(session):
    """Under pytest-xdist the controller collects nothing: it builds the JVM class archive and starts what
    :func:`pytest_collection_modifyitems` starts in a one-process session, and exports where the workers find
    them. What the command line names decides it: test files, folders or tests (none: tests/), and a -m expression
    matched against the two tests' markers. Under -k, --deselect, --ignore, --lf or --sw (which this cannot
    follow) it starts neither: the worker that runs one of those tests starts it then."""
    config = session.config
    if not hasattr(config, "workerinput") and not config.option.collectonly:
        _keep_jvm_temp_files_in_basetemp(config)
    if hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no" or config.option.collectonly:
        return
    wanted = _named_by_args(config)
    _use_jvm_archive(config, any("pytest.mark.spark" in text or "pytest.mark.jvm" in text for text, _ in wanted.values()))
    narrowed = [getattr(config.option, name, None) for name in ("keyword", "deselect", "ignore", "ignore_glob", "lf",
                                                                  "stepwise")]  # fmt: skip
    if any(narrowed) or not _marks_selected(config, {"spark", "slow"}):  # the markers of both tests below
        return
    from tests import label_studio_server
    from tests.jobs import test_session

    file, name = MASTER_DOWN_TEST.split("::")
    master_down = file in wanted and (wanted[file][1] is None or name in wanted[file][1])
    label_studio = LABEL_STUDIO_TEST in wanted and os.environ.get("LAKELABEL_LABEL_STUDIO") != "skip"
    if master_down:  # first: its variable is exported before Label Studio's thread copies the environment
        test_session.start_master_down(config._tmp_path_factory.mktemp("master-down"), shared=True)
    if label_studio:
        label_studio_server.start_background(shared=True)


#: The variable that names where the suite's JVMs keep their temporary files (:func:`_keep_jvm_temp_files_in_basetemp`).
SPARK_LOCAL_DIRS_ENV = "SPARK_LOCAL_DIRS"


def _keep_jvm_temp_files_in_basetemp(config) -> None:
    """Point the temporary files of every JVM the suite starts at a folder of this session's basetemp.

    A Spark JVM deletes its folders (``spark-*``, ``blockmgr-*``, ``artifacts-*``) and the native libraries it
    unpacked (``snappy-*``, ``liblz4-java-*``) as it exits. The drills that kill a ``lakelabel`` with SIGKILL
    (tests/test_drills_cli.py) gave it no exit, and each left 7 of those in /tmp, every run of the suite: Spark's
    normal behaviour for a killed JVM. Here they stay in the session's basetemp, which pytest deletes three sessions
    later. ``SPARK_LOCAL_DIRS`` moves Spark's folders (in every process that inherits it: the test session's JVM,
    each ``lakelabel`` and ``spark-submit``, the standalone worker and its executors); ``java.io.tmpdir``, which
    decides where the JVM itself and Spark's artifact folders write, is added to the suite's own JVM flags only (a
    ``SPARK_SUBMIT_OPTS`` of your own decides it). Called in the controller and in a one-process session, before
    any JVM starts; pytest-xdist's workers inherit the environment. A ``SPARK_LOCAL_DIRS`` of your own wins.
    The JVMs' ``/tmp/hsperfdata_<user>/<pid>`` files are not moved (HotSpot fixes that folder); the next JVM that
    starts deletes a dead one's."""
    folder = config._tmp_path_factory.mktemp("jvm-tmp", numbered=False)
    os.environ.setdefault(SPARK_LOCAL_DIRS_ENV, str(folder))
    for name, ours in _SET_BY_SUITE.items():
        if ours:
            os.environ[name] += f" -Djava.io.tmpdir={folder}"


def _named_by_args(config) -> dict[str, tuple[str, set[str] | None]]:
    """The suite's test files the command line names, alone or in a folder: path -> (text, the test names given
    after '::', None for all)."""
    named: dict[Path, set[str] | None] = {}
    for arg in config.args or [str(REPO / "tests")]:
        path, _, node = arg.partition("::")
        root = (Path(config.invocation_params.dir) / path).resolve()
        for file in [root] if root.is_file() else root.rglob("test_*.py"):
            if node and named.get(file, set()) is not None:
                named.setdefault(file, set()).add(node.split("::")[0].split("[")[0])
            else:
                named[file] = None
    return {file.relative_to(REPO).as_posix(): (file.read_text(errors="replace"), names)
            for file, names in named.items() if REPO / "tests" in file.parents}


def _marks_selected(config, marks: set[str]) -> bool:
    """Whether a test with ``marks`` passes the command line's -m expression."""
    if not config.option.markexpr:
        return True
    from _pytest.mark import expression

    try:
        return expression.Expression.compile(config.option.markexpr).evaluate(lambda name, **kwargs: name in marks)
    except (SyntaxError, getattr(expression, "ParseError", SyntaxError)):  # pytest < 9 raises its own ParseError;
        # the workers report the expression's error; start nothing for them
        return False


_ARCHIVE: dict = {}  # the line the terminal summary prints


def _use_jvm_archive(config, wanted: bool) -> None:
    """Build (or reuse) the suite's class archive and point the suite's JVMs at it, before any starts.

    The build runs before the first test, not beside it: on 2 cores a background build (84 s) and the
    first tests (the analyze fixture 90 s instead of 27 s) slowed each other more than the build
    costs alone (about 25 s), and the test session's own JVM started without the archive."""
    if not _SET_BY_SUITE["SPARK_SUBMIT_OPTS"] or os.environ.get(JVM_ARCHIVE_ENV) == "0":
        return
    if hasattr(config, "workerinput") or config.option.collectonly or not wanted:
        return  # pytest-xdist workers use the one their controller built, through the environment
    import time

    from tests import jvm_archive

    cache = getattr(config, "cache", None)
    started = time.perf_counter()
    try:  # -p no:cacheprovider: a temporary folder, so a build every session
        folder = Path(cache.mkdir("jvm-class-archive") if cache is not None else config._tmp_path_factory.mktemp("jvm"))
        archive, how = jvm_archive.build(folder, TEST_JVM_OPTS, REPO)
    except OSError as err:  # another pytest in this checkout building it at the same moment, say
        archive, how = None, str(err)
    if archive is None:
        _ARCHIVE["line"] = f"JVM class archive not used ({how}); the JVMs loaded Spark's classes from the jars"
        return
    for name, ours in _SET_BY_SUITE.items():
        if ours:
            os.environ[name] += f" -XX:SharedArchiveFile={archive}"
    _ARCHIVE["line"] = f"JVM class archive {how} in {time.perf_counter() - started:.0f} s: {archive}"


def pytest_terminal_summary(terminalreporter):
    if "line" in _ARCHIVE:
        terminalreporter.write_line(_ARCHIVE["line"])


@pytest.fixture(scope="session")
def spark():
    """A local[2] SparkSession shared by every Spark test (UI off, 2 partitions, UTC, no code generation or AQE).

    An active session (a Databricks notebook running the suite) is used as is and not stopped.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers import LF modules that live in tests/ by name.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)]))
    from pyspark.sql import SparkSession

    from jobs.runtime.session import get_spark

    existing = SparkSession.getActiveSession()
    session = get_spark(
        "lakelabel-tests",
        master="local[2]",
        # One partition per core: the tests' tables are tens of rows, and two waves of tasks (4
        # partitions) made pipeline, analyze and people tests 11-21% slower (RESULTS.md, session 20).
        # Whole-stage code generation and adaptive execution off: on tables of tens of rows compiling each
        # query's Java (Janino, then the JVM) and re-planning after every shuffle cost more than they save;
        # the people, drills and pipeline tests took 159 s instead of 176 s (paired runs, RESULTS.md, session
        # 30). The jobs' results do not depend on either; tests that start lakelabel or spark-submit as a process
        # (the CLI drills, the cluster tests) keep Spark's defaults.
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
              "spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false", **delta_test_conf()},
    )
    yield session
    if existing is None:
        session.stop()


@pytest.fixture(autouse=True)
def _restore_mlflow_tracking_uri():
    """Undo a test's ``mlflow.set_tracking_uri`` (and ``set_experiment``, ``set_registry_uri``), which export
    ``MLFLOW_TRACKING_URI`` (and ``MLFLOW_EXPERIMENT_ID``, ``MLFLOW_REGISTRY_URI``) for the process.

    Left set, a later test's jobs would log into that test's store instead of their own lakehouse.
    """
    before = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID",
                                                      "MLFLOW_REGISTRY_URI")}  # set_registry_uri exports it too
    yield
    for name, value in before.items():  # mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID likewise
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def _mlflow_schema_once(tmp_path_factory):
    """MLflow's tables created once per test session, then copied into each new sqlite store of this process.

    A new store runs MLflow's ~50 schema migrations (``mlflow.store.db.utils._initialize_tables``): about 2 s,
    which two dozen in-process tests with a fresh lakehouse each paid (profiled in session 28: 8% of their time).
    Here the first store's tables are made by that same function, into a template file, and every later new store
    of this process gets a page-for-page copy of it (sqlite's backup API): the same schema and ``alembic_version``,
    no rows (the store adds its Default experiment itself). Only in this process: the CLI tests' child processes
    (``lakelabel demo``, the drills, the cluster tests) still create their stores from scratch.
    """
    import sqlite3

    try:
        import mlflow.store.db.utils as db_utils
        import mlflow.store.model_registry.sqlalchemy_store as registry_store
    except ImportError:
        yield
        return
    original = db_utils._initialize_tables
    template = tmp_path_factory.mktemp("mlflow_schema") / "template.db"

    def initialize(engine):
        path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        if not path or path == ":memory:":
            return original(engine)
        import sqlalchemy

        if sqlalchemy.inspect(engine).get_table_names():  # an existing store: MLflow < 3.9 re-initializes every
            return original(engine)  # store its registry opens (_all_tables_exist compared sets), not only new ones
        if not template.exists():
            built = sqlalchemy.create_engine(f"sqlite:///{template}")
            original(built)
            built.dispose()
        with sqlite3.connect(template) as src, sqlite3.connect(path) as dst:
            src.backup(dst)

    db_utils._initialize_tables = registry_store._initialize_tables = initialize
    try:
        yield
    finally:
        db_utils._initialize_tables = registry_store._initialize_tables = original


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests that need it skip with the path when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repo checkout)")
    return SHARED_DATA


# The test process reads Delta tables with deltalake and pyarrow, whose native thread pools can
# abort the interpreter's teardown (exit code 134 after every test passed; README "Reading the
# tables"). End pytest as lakelabel's own programs end: Python's exit handlers, then os._exit with
# pytest's exit status. LAKELABEL_TEST_NATIVE_EXIT=1 keeps the normal interpreter exit.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))
    from tests import label_studio_server

    label_studio_server.stop_background()
    test_session = sys.modules.get("tests.jobs.test_session")  # imported when it started the spark-submit
    if test_session is not None:
        test_session.stop_master_down()  # still waiting when its test did not run (-x, a deselection)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _EXIT_STATUS and os.environ.get("LAKELABEL_TEST_NATIVE_EXIT") != "1" and not hasattr(config, "workerinput"):
        from jobs.runtime.command import exit_process

        exit_process(_EXIT_STATUS[-1])
