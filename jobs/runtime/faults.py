"""Which failures are transient: the CLI gives them exit code 3 (a retry may succeed), not 2 or 1.

Orchestrators retry on 3 and page someone on 2 (fix your input) or 1 (a bug). The patterns below
are the messages of the faults seen here: a Python worker or executor lost after Spark's task
retries, a Delta commit that lost a race with a concurrent writer, a SQLite MLflow store that is
locked or being created by another process at the same time, an MLflow tracking server that does not answer.
"""

from __future__ import annotations

import errno
import importlib
import re
from urllib.parse import urlparse

_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"Python worker exited unexpectedly|Worker lost|ExecutorLostFailure"
     r"|SparkContext was shut down|Connection reset by peer",
     "a Spark worker was lost after the task retries"),
    (r"Task \d+ in stage [\d.]+ failed \d+ times.*(exited|lost|killed|crash)",
     "a Spark task failed on every retry because its worker died"),
    (r"CommitFailed|Transaction failed|Failed to commit transaction|version already exists"
     r"|A Delta Lake table already exists at that location|a concurrent transaction"
     r"|ConcurrentAppend|ConcurrentModification"
     r"|ConcurrentDeleteRead|ConcurrentTransaction|MetadataChangedException|ProtocolChangedException",
     "the Delta commit conflicted with a concurrent writer"),
    (r"database is locked|table \w+ already exists|UNIQUE constraint failed: experiments"
     r"|Detected out-of-date database schema|alembic_version",
     "the MLflow store was busy or being created by another process"),
)


# A task failure on an executor, as Spark words it (the text the error chain carries from there).
_ON_EXECUTOR = re.compile(r"PythonException|Python worker|in stage [\d.]+|TaskSetManager|Job aborted due to stage failure")
# Python that an executor could not start, or a module its Python lacks.
_NO_PROGRAM = re.compile(r'Cannot run program "([^"]+)"(?:[^:\n]*: error=\d+)?')
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
# Spark's own words only: an LF's error text that says "crashed" (a service it calls) is not a dead worker.
_CRASHED = re.compile(r"Python worker exited unexpectedly")
_CANCELLED = re.compile(r"cancell?ed", re.I)


# Terminal colours in an error's text (delta-rs colours the arrows of its causes).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def deepest_cause(text: str) -> str | None:
    """The last of the ``↳ cause`` lines delta-rs puts under its first line (``Generic LocalFileSystem error``,
    then ``↳ Unable to copy data to file``, ``↳ No space left on device (os error 28)``): what went wrong."""
    causes = [line.strip().lstrip("↳").strip() for line in _ANSI.sub("", text).splitlines()
              if line.strip().startswith("↳")]
    return causes[-1] if causes else None


def error_line(err: BaseException, limit: int = 500) -> str:
    """``err``'s first line (Spark's and Py4J's errors carry JVM stack traces after it), with the deepest of
    delta-rs' causes when it has them, at most ``limit`` characters."""
    text = _ANSI.sub("", str(err)).strip() or type(err).__name__
    lines = text.splitlines()
    # SQLAlchemy puts its advice on autoflush first, the database's own error on the next line.
    line = lines[1 if lines[0].startswith("(raised as a result of Query-invoked autoflush") and len(lines) > 1 else 0]
    line = line.strip()
    # Py4J: "An error occurred while calling o116.collectToPython." says only where; the Java exception follows.
    rest = [other.strip() for other in lines[1:] if other.strip()]
    if line.startswith("An error occurred while calling ") and rest:
        line = f"{line} {rest[0]}"
    if (cause := deepest_cause(text)) is not None and cause not in line:
        line = f"{line}: {cause}"
    return line if len(line) <= limit else line[:limit] + "..."


def _chain(err: BaseException | None, limit: int = 8):
    """``err`` and the errors it was raised from, with their texts."""
    seen = 0
    while err is not None and seen < limit:
        yield err, f"{type(err).__name__}: {err}"
        err = err.__cause__ or err.__context__
        seen += 1


def executor_environment_reason(err: BaseException) -> str | None:
    """One line when the executors could not run the job's Python (exit 2), else None.

    A module an LF or its helpers import that exists only where the job was submitted, a
    third-party package missing from the executors' Python, or a ``spark.pyspark.python`` /
    ``PYSPARK_PYTHON`` that does not exist on the workers: each fails every attempt of the first
    task, surfaced as the error of whatever Spark job ran it (a Delta write, say). A retry fails
    the same way; the fix is where the Python comes from (README, "What travels where").
    """
    fix = ("ship the package with spark-submit --py-files (a .zip of it), install it into the executors' Python, "
           "or point spark.pyspark.python / PYSPARK_PYTHON at a Python that has it on every worker "
           "(README \"What travels where\")")
    for _, text in _chain(err):
        program = _NO_PROGRAM.search(text)
        # A Python that cannot be started is the executors' (the driver's own is running this); any
        # other program only when Spark says a task failed on it.
        if program and not ("python" in program.group(1).rsplit("/", 1)[-1].lower() or _ON_EXECUTOR.search(text)):
            program = None
        if not program and not _ON_EXECUTOR.search(text):
            continue
        if program:
            return (f"the executors could not run the job's Python: {program.group(0)} (the executors' Python, "
                    f"spark.pyspark.python or PYSPARK_PYTHON, is missing on the worker); point spark.pyspark.python / "
                    f"PYSPARK_PYTHON at a Python that exists on every worker (README \"What travels where\")")
        module = _NO_MODULE.search(text)
        if module and not _driver_imports(module.group(1)):  # missing here too: not a shipping problem
            return (f"No module named '{module.group(1)}' where the job runs (the driver's Python lacks it too, "
                    f"and the executors' failed on it): install the package that provides it into the job's "
                    f"environment (the LF's or its model's requirements), then rerun")
        if module:
            return (f"the executors could not run the job's Python: No module named '{module.group(1)}' in the "
                    f"executors' Python (it exists only where the job was submitted, or is not installed there); {fix}")
    return None


# lakelabel's own input error raised inside a Spark task (a model LF that cannot score on an executor): the last line
# of the Python worker's traceback that Spark's error carries.
_TASK_INPUT_ERROR = re.compile(r"^(?:lf_library\.errors\.)?(?:InputDataError|LFConfigError): (.+)$", re.M)


def task_input_error(err: BaseException) -> str | None:
    """The message of an :class:`~lf_library.errors.InputDataError` (or ``LFConfigError``) that a Spark task raised,
    from the error Spark gives the driver ("An exception was thrown from the Python worker ..."), else None."""
    for _, text in _chain(err):
        if _ON_EXECUTOR.search(text) and (found := _TASK_INPUT_ERROR.findall(text)):
            return found[-1].strip()
    return None


def _driver_imports(module: str) -> bool:
    """Whether this (the driver's) Python imports ``module``: an error path only, so importing it is fine."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - missing, or failing to import: either way not importable here
        return False
    return True


def crash_reason(err: BaseException) -> str | None:
    """One line when the Python worker running the LFs died on every attempt of a task, else None.

    Spark's own words ("Python worker exited unexpectedly (crashed). Consider setting ...") say
    neither what died nor what to do. Still a transient fault (exit 3): a worker killed for memory
    may get through on a retry; an LF that ends the process on a row will not.
    """
    for _, text in _chain(err):
        if _CRASHED.search(text):
            break
    else:
        return None
    # What failed, in lakelabel's words ("writing Delta table ... failed before commit; no table was
    # created"), without Spark's: py4j's call and the task failure that follow it.
    top = str(err).strip().splitlines()[0] if str(err).strip() else ""
    found = _CRASHED.search(top)
    cuts = [at for at in (top.find(": An error occurred while calling"), top.find(": org.apache.spark"),
                          found.start() if found else -1) if at >= 0]  # fmt: skip
    where = top[:min(cuts)].rstrip(" :;.(") if cuts else ""
    where = "" if where.startswith(("An error occurred while calling", "Job aborted")) else where
    return (f"{where + ': ' if where else ''}the Python worker running the LFs ended on every attempt of a task "
            "(an LF or a library it calls exited the process, crashed, or was killed for memory); if it repeats on "
            "retry, find the LF by running a subset (--set 'lfs.include=[...]') or with "
            "--set 'spark.conf={spark.sql.execution.pyspark.udf.faulthandler.enabled: true}', which adds the "
            "Python stack of a native crash to the error")


def says_cancelled(err: BaseException) -> bool:
    """Whether ``err``'s own text (not the errors it was raised from) says a Spark job was cancelled."""
    return bool(_CANCELLED.search(str(err)))


def was_cancelled(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) is a Spark job that was cancelled."""
    return any(_CANCELLED.search(text) for _, text in _chain(err))


# MLflow's REST client once its HTTP retries are spent (mlflow/utils/rest_utils.py): "API request to URL failed with
# exception E" or "... failed with timeout exception E" (no answer), "API request to endpoint PATH failed with error code
# N != 200. Response body: '...'" (an answer).
_TRACKING = re.compile(r"API request to (?:endpoint )?(?P<url>\S+?) failed with "
                       r"(?:(?P<exc>(?:timeout )?exception)|error code) (?P<rest>.*)", re.S)
_UNREACHABLE = re.compile(r"Connection refused|Connection reset|timed out|RemoteDisconnected|Name or service not known"
                          r"|Temporary failure in name resolution|No route to host|Network is unreachable"
                          r"|ConnectTimeout|ReadTimeout|too many 5\d\d error responses")
_REFUSED = re.compile(r"^(40[13])\b")


# The MLflow store lakelabel last talked to (jobs.runtime.tracking sets it): MLflow's own global tracking URI does not
# say it, since lakelabel takes back the environment variable MLflow exports for a store named in the config.
_store: list[str] = [""]


def talking_to(uri: str) -> None:
    """Record the MLflow store the command talks to, so that its errors are read as about it (or not)."""
    _store[0] = uri


def _server() -> str:
    """The tracking server the command talks to, or "" when it talks to another store (sqlite, Databricks)."""
    return _store[0] if _store[0].startswith(("http:", "https:")) else ""


def _tracking_request(text: str, server: str) -> re.Match | None:
    """MLflow's REST error in ``text`` when it is about the tracking server ``server``: a relative endpoint is
    MLflow's own, a full URL must be on the server's host (an LF calling a model-serving endpoint through MLflow
    gets the same words about another service)."""
    found = _TRACKING.search(text)
    url = re.match(r"https?://[^/\s]+", found["url"]) if found else None
    if url and urlparse(url.group(0)).netloc != urlparse(server).netloc:
        return None
    return found


def tracking_reason(err: BaseException, server: str | None = None) -> str | None:
    """One line when ``err`` (or an error it was raised from) is the MLflow tracking server (``server``, else the one
    MLflow talks to) that did not answer after MLflow's own HTTP retries (down, unreachable, timing out, or answering
    5xx), else None: transient, exit 3. A server that answers and refuses (401, 403, 404) is not: a retry gets the
    same answer."""
    server = server or _server()
    for _, text in _chain(err):
        found = _tracking_request(text, server)
        if found is None:
            continue
        why = _UNREACHABLE.search(found["rest"]) if found["exc"] else re.match(r"5\d\d\b", found["rest"])
        if why:
            shown = f" {server}" if server else ""
            return (f"the MLflow tracking server{shown} did not answer ({why.group(0)}) after MLflow's HTTP retries "
                    f"(MLFLOW_HTTP_REQUEST_MAX_RETRIES): check that it is running and reachable at mlflow.tracking_uri "
                    f"or MLFLOW_TRACKING_URI, or set mlflow.enabled to false to run without it")
    return None


def tracking_refusal(err: BaseException, server: str | None = None) -> str | None:
    """One line when ``err`` is the MLflow tracking server (``server``, else the one MLflow talks to) refusing the
    request for want of credentials (401, 403), else None: exit 2, a retry gets the same answer."""
    server = server or _server()
    for error, text in _chain(err):
        found = _tracking_request(text, server)
        code = _REFUSED.search(found["rest"]) if found is not None and not found["exc"] else None
        if code:
            body = re.search(r"Response body: '(.*?)'?\s*$", found["rest"], re.S)
            shown = " ".join(body.group(1).split())[:120] if body else ""
            said = f"error code {code.group(1)}" + (f": {shown}" if shown else "")
        elif (getattr(error, "error_code", None) in ("PERMISSION_DENIED", "UNAUTHENTICATED")
              and type(error).__module__.startswith("mlflow.")):  # MLflow's RestException (not another SDK's)
            said = str(error).strip().splitlines()[0][:200]
        else:
            continue
        where = f" {server}" if server else ""
        return (f"the MLflow tracking server{where} refused the request ({said}): check the "
                f"credentials MLflow reads (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                f"MLFLOW_TRACKING_PASSWORD) and mlflow.tracking_uri or MLFLOW_TRACKING_URI")
    return None


# The file system refused a read or write: no space, a quota, no permission, a read-only mount. A retry fails the
# same way until space is freed or the permissions fixed (exit 2), whichever library said it: an OSError, delta-rs
# ("os error 28"), SQLite through MLflow ("database or disk is full"), the JVM through Py4J (java.io.IOException).
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})
_FULL = re.compile(r"No space left on device|Disk quota exceeded|disk is full|os error (?:28|122)\b")
_READ_ONLY = re.compile(r"Read-only file system|os error 30\b")
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?:Exception|Error)\b")
_STORAGE = re.compile(r"No space left on device|Disk quota exceeded|database or disk is full|Permission denied"
                      r"|Read-only file system|os error (?:28|122|13|30)\b")


def storage_reason(err: BaseException) -> str | None:
    """One line when ``err`` (or an error it was raised from) is the file system refusing lakelabel, naming what it
    said and, where known, the path; else None."""
    for e, text in _chain(err):
        if isinstance(e, OSError) and e.errno in _STORAGE_ERRNOS:
            what = f"{e.strerror}: {e.filename}" if e.filename else error_line(e, 300)
            break
        text = _ANSI.sub("", text)
        if (m := _STORAGE.search(text)) is not None:
            line = next(line for line in text.splitlines() if m.group(0) in line).strip().lstrip("↳").strip()
            # From the exception that says it (java.io.IOException: No space left on device), not Spark's preamble.
            at = line.index(m.group(0))
            named = [c.start() for c in _EXCEPTION.finditer(line[:at])]
            start = named[-1] if named else 0
            what = line[start - 1 if start and line[start - 1] == "(" else start:]  # (sqlite3.OperationalError) ...
            what = what if len(what) <= 300 else what[:300] + "..."
            break
    else:
        return None
    places = "the lakehouse, the MLflow store, Spark's local folder spark.local.dir or /tmp"
    if _FULL.search(what) is not None:
        return f"the file system refused: {what}; free space there ({places}) and rerun"
    if _READ_ONLY.search(what) is not None:
        return f"the file system refused: {what}; make it writable for this user there ({places}) and rerun"
    # No permission: a source lakelabel reads is refused so as well as a folder it writes.
    return (f"the file system refused: {what}; give this user access there (read for a source, write for {places}) "
            f"and rerun")


def transient_reason(err: BaseException) -> str | None:
    """A one-line reason when ``err`` (or an error it was raised from) is transient, else None."""
    tracking = tracking_reason(err)
    if tracking:
        return tracking
    for _, text in _chain(err):
        for pattern, reason in _PATTERNS:
            if re.search(pattern, text, flags=re.S):
                first = text.strip().splitlines()[0][:300]
                return f"{reason} ({first})"
    return None
