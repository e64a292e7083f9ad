"""How a failure's line and exit code are chosen (jobs/runtime/faults.py, exits._outcome): the cases a
review of session 18 found misread."""

from __future__ import annotations

from jobs.runtime import exits, progress
from jobs.runtime.faults import crash_reason, executor_environment_reason, transient_reason, was_cancelled
from lf_library.errors import InputDataError

SPARK_CRASH = ("An error occurred while calling o130.collectToPython.\n: org.apache.spark.SparkException: Job aborted "
               "due to stage failure: Task 0 in stage 3.0 failed 4 times ... org.apache.spark.SparkException: Python "
               "worker exited unexpectedly (crashed). Consider setting 'spark.sql.execution.pyspark.udf.faulthandler."
               "enabled'")
LF_TEXT = ("An error occurred while calling o130.collectToPython.\n: org.apache.spark.api.python.PythonException: "
           "Traceback (most recent call last):\n  File \"lfs.py\", line 3, in vote\nRuntimeError: tokenizer service "
           "crashed, status 500")


def test_only_sparks_words_make_a_crashed_worker():
    assert crash_reason(RuntimeError(SPARK_CRASH)).startswith("the Python worker running the LFs ended")
    assert transient_reason(RuntimeError(SPARK_CRASH)).startswith("a Spark worker was lost")
    # an LF's own error that says "crashed" is the LF's error, not a dead worker to retry
    assert crash_reason(RuntimeError(LF_TEXT)) is None and transient_reason(RuntimeError(LF_TEXT)) is None


def test_a_module_missing_on_the_driver_too_is_not_called_a_shipping_problem():
    """A drill (scikit-learn gone from a local venv): "No module named 'sklearn' in the executors' Python (it exists
    only where the job was submitted ...); ship the package with spark-submit --py-files" in local mode."""
    def failed(module: str) -> RuntimeError:
        return RuntimeError(f"An error occurred while calling o88.save.\n: org.apache.spark.SparkException: Job "
                            f"aborted due to stage failure: ... PythonException: ModuleNotFoundError: No module named "
                            f"'{module}'")

    assert executor_environment_reason(failed("no_such_package_s35")) == (
        "No module named 'no_such_package_s35' where the job runs (the driver's Python lacks it too, and the "
        "executors' failed on it): install the package that provides it into the job's environment (the LF's or its "
        "model's requirements), then rerun")
    # One the driver has (a helper shipped with the job's folder, not to the executors): the shipping advice.
    shipped = executor_environment_reason(failed("json"))
    assert shipped.startswith("the executors could not run the job's Python: No module named 'json' in the "
                              "executors' Python") and "--py-files" in shipped


def test_lakelabels_own_error_from_inside_a_spark_task_is_its_line_and_exit_2():
    """A re-drill: a model LF failing on the executors of `analyze`'s held-out pass said "PythonException: An
    exception was thrown from the Python worker. Please see the stack trace below." (exit 1)."""
    said = ("model LF 'm': model models:/m/1 needs the module 'sklearn', which this Python cannot import; install it")
    err = RuntimeError("An error occurred while calling o212.collectToPython.\n: org.apache.spark.api.python."
                       "PythonException: An exception was thrown from the Python worker. Please see the stack trace "
                       "below.\nTraceback (most recent call last):\n  File \"/x/lf_library/models.py\", line 370, in "
                       f"predict_frame\nlf_library.errors.InputDataError: {said}\n")
    assert exits._outcome(err, debug=False) == (said, exits.EXIT_INPUT)
    # An LF's own exception on a row is not lakelabel's input error.
    assert exits._outcome(RuntimeError(LF_TEXT), debug=False)[1] == exits.EXIT_UNEXPECTED


def test_the_executor_timeout_names_only_the_job_it_cancelled(monkeypatch):
    monkeypatch.setattr(progress, "_executor_timeout", ["no executor registered with spark://h:7077 for 300s"])
    cancelled = RuntimeError("An error occurred while calling o9.collectToPython.\n: Job 7 cancelled part of "
                             "cancelled job group")
    assert was_cancelled(cancelled) and not was_cancelled(InputDataError("LF 'x' raised on 9 of 10 rows"))
    assert exits._outcome(cancelled, debug=False) == ("no executor registered with spark://h:7077 for 300s",
                                                        exits.EXIT_TRANSIENT)
    # a later, unrelated failure keeps its own line and code
    assert exits._outcome(InputDataError("LF 'x' raised on 9 of 10 rows"), debug=False) == (
        "LF 'x' raised on 9 of 10 rows", exits.EXIT_INPUT)


def test_a_tracking_server_that_fails_is_transient_one_that_refuses_is_input(monkeypatch):
    """MLflow's REST errors once its retries are spent: a server answering 5xx is transient (exit 3) like one that is
    down; one answering 403 (credentials) gives the same answer on a retry: exit 2."""
    from jobs.runtime import faults
    from jobs.runtime.faults import tracking_reason

    monkeypatch.setattr(faults, "_server", lambda: "https://mlflow.example.com")  # the server MLflow talks to
    failing = RuntimeError("API request to https://mlflow.example.com/api/2.0/mlflow/runs/create failed with exception "
                           "HTTPSConnectionPool(host='mlflow.example.com', port=443): Max retries exceeded with url: "
                           "/api/2.0/mlflow/runs/create (Caused by ResponseError('too many 503 error responses'))")
    assert tracking_reason(failing).startswith("the MLflow tracking server https://mlflow.example.com did not answer "
                                               "(too many 503 error responses)")
    assert exits._outcome(failing, debug=False)[1] == exits.EXIT_TRANSIENT
    refusing = RuntimeError("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 403 != 200. "
                            "Response body: 'Forbidden'")
    assert tracking_reason(refusing) is None
    assert exits._outcome(refusing, debug=False) == (
        "the MLflow tracking server https://mlflow.example.com refused the request (error code 403: Forbidden): check "
        "the credentials MLflow "
        "reads (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD) and "
        "mlflow.tracking_uri or MLFLOW_TRACKING_URI", exits.EXIT_INPUT)
    # MLflow's words for a request that timed out; and the same words about another service (an LF calling a model
    # endpoint through MLflow) are that service's, not the tracking server's
    timeout = RuntimeError("API request to https://mlflow.example.com/api/2.0/mlflow/experiments/search failed with "
                           "timeout exception ConnectTimeout(MaxRetryError(\"... (connect timeout=120)\"))")
    assert tracking_reason(timeout).startswith("the MLflow tracking server https://mlflow.example.com did not answer "
                                               "(ConnectTimeout)")
    endpoint = RuntimeError("API request to https://serving.example.com/invocations failed with exception "
                            "HTTPSConnectionPool(host='serving.example.com', port=443): Read timed out.")
    assert tracking_reason(endpoint) is None and exits._outcome(endpoint, debug=False)[1] == exits.EXIT_UNEXPECTED
    # An answer whose body says "timed out" (a proxy's 400) is an answer, not silence
    answered = RuntimeError("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 400 != 200. "
                            "Response body: 'upstream request timed out'")
    assert tracking_reason(answered) is None


def test_a_model_lf_whose_store_does_not_answer_is_transient(monkeypatch):
    """A model LF resolves its model on its store when it is versioned; a store that does not answer said "register
    the model there ... or fix model_uri" (exit 2), a fix for a problem the config does not have."""
    import pytest

    from lf_library.errors import TransientError
    from lf_library.models import model_lf
    from tests.label_studio_server import free_port

    port = free_port()  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    lf = model_lf("clf", "models:/spam_clf/1", label_map={0: "ham", 1: "spam"}, tracking_uri=f"http://127.0.0.1:{port}")
    with pytest.raises(TransientError, match=rf"^model LF 'clf': model URI 'models:/spam_clf/1' could not be resolved: "
                                             rf"the MLflow store http://127.0.0.1:{port} did not answer after MLflow's"):
        lf.resolve()


# What a full disk, a read-only mount and a folder of another user said in an operator drill (session 37): each was
# exit 1 ("report it") with the library's words only, the cause cut off after the first line.
DELTA_RS_FULL = ("Generic LocalFileSystem error\n          \x1b[31m↳\x1b[0m Unable to copy data to file\n"
                 "           \x1b[31m↳\x1b[0m No space left on device (os error 28)")
SPARK_LOCAL_DIR_FULL = ("An error occurred while calling o116.collectToPython.\n: org.apache.spark.SparkException: Job "
                        "aborted due to stage failure: Task 0 in stage 2.0 failed 4 times, most recent failure: Lost "
                        "task 0.3 in stage 2.0 (TID 5) (localhost executor driver): java.io.IOException: No space left "
                        "on device\n\tat java.base/java.io.FileOutputStream.writeBytes(Native Method)")
SQLITE_FULL = ("(raised as a result of Query-invoked autoflush; consider using a session.no_autoflush block if this "
               "flush is occurring prematurely)\n(sqlite3.OperationalError) database or disk is full\n"
               "[SQL: UPDATE runs SET status=?, end_time=? WHERE runs.run_uuid = ?]")


def test_the_file_system_refusing_is_exit_2_with_what_it_said():
    from jobs.runtime.faults import error_line

    assert error_line(OSError(DELTA_RS_FULL)) == "Generic LocalFileSystem error: No space left on device (os error 28)"
    assert error_line(RuntimeError(SQLITE_FULL)) == "(sqlite3.OperationalError) database or disk is full"
    fix_space = "; free space there (the lakehouse, the MLflow store, Spark's local folder spark.local.dir or /tmp) and rerun"
    fix_access = ("; give this user access there (read for a source, write for the lakehouse, the MLflow store, "
                  "Spark's local folder spark.local.dir or /tmp) and rerun")
    fix_read_only = ("; make it writable for this user there (the lakehouse, the MLflow store, Spark's local folder "
                     "spark.local.dir or /tmp) and rerun")
    for err, said, fix in (
        (OSError(DELTA_RS_FULL), "No space left on device (os error 28)", fix_space),
        (RuntimeError(SPARK_LOCAL_DIR_FULL), "java.io.IOException: No space left on device", fix_space),
        (RuntimeError(SQLITE_FULL), "(sqlite3.OperationalError) database or disk is full", fix_space),
        (PermissionError(13, "Permission denied", "/lake/labels/_lakelabel_writers"),
         "Permission denied: /lake/labels/_lakelabel_writers", fix_access),
        (OSError(30, "Read-only file system", "/lake/labels/_lakelabel_writers"),
         "Read-only file system: /lake/labels/_lakelabel_writers", fix_read_only),
        # A source that cannot be read was told to be made writable.
        (PermissionError(13, "Permission denied", "/data/tickets/part-0.parquet"),
         "Permission denied: /data/tickets/part-0.parquet", fix_access),
    ):
        assert exits._outcome(err, debug=False) == (f"the file system refused: {said}{fix}", exits.EXIT_INPUT), err
    # Raised from another error: the cause is found in the chain.
    try:
        try:
            raise OSError(28, "No space left on device", "/lake/mlflow.db")
        except OSError as inner:
            raise RuntimeError("could not log the model") from inner
    except RuntimeError as outer:
        assert exits._outcome(outer, debug=False)[1] == exits.EXIT_INPUT
    # lakelabel's own error keeps its line (it names the table) and its code.
    own = InputDataError(f"writing Delta table /lake/votes failed before commit; the table stays at version 0: "
                         f"{error_line(OSError(DELTA_RS_FULL))}")
    assert exits._outcome(own, debug=False) == (str(own), exits.EXIT_INPUT)
    assert exits._outcome(OSError(2, "No such file or directory", "/x"), debug=False)[1] == exits.EXIT_UNEXPECTED


def test_a_line_that_says_what_stands_is_not_told_again(capsys):
    """The drill's full summary folder after a run's commits: the line said "rerun with --run-id r1" twice."""
    from jobs.runtime import signals
    from lf_library.errors import ConfigError

    def fails(says: bool):
        def call():
            signals.note_run("r1")
            signals.note_commit("labels /lake/labels v1")
            err = ConfigError("--summary-json /full/s.json: cannot write the summary (No space left on device); run r1 "
                              "did its work and committed it, only this file is missing: ...")
            if says:
                err.says_what_stands = True
            raise err
        return call

    for says, told in ((True, 0), (False, 1)):
        assert exits.guarded(fails(says), debug=False) == exits.EXIT_INPUT
        line = capsys.readouterr().err.strip()
        assert line.count("it committed labels /lake/labels v1 before that") == told, line


def test_a_py4j_error_line_carries_the_java_exception():
    """The drill's Spark failures said only "Py4JJavaError: An error occurred while calling o116.collectToPython."."""
    from jobs.runtime.faults import error_line

    err = RuntimeError("An error occurred while calling o9.save.\n: java.lang.IllegalStateException: the cause\n\tat x")
    assert error_line(err) == "An error occurred while calling o9.save. : java.lang.IllegalStateException: the cause"
    assert exits._outcome(err, debug=False) == (
        "RuntimeError: An error occurred while calling o9.save. : java.lang.IllegalStateException: the cause (rerun "
        "with --verbose for the traceback)", exits.EXIT_UNEXPECTED)


def test_a_python_worker_out_of_memory_names_apply_batch_size():
    """A drill (session 40, documents of 20-100 KB, spark.executor.pyspark.memory=1g): the lexicon LF's batch ran the
    worker out of memory, and the line was "... no table was created: An exception was thrown from the Python worker.
    Please see the stack trace below." (exit 2): a bare "MemoryError" was not read as the traceback's last line."""
    import pytest

    from jobs import apply_lfs
    from jobs.delta_io.errors import DeltaWriteError, _summary
    from jobs.runtime.config_loading import config_from_dict

    cause = RuntimeError("An error occurred while calling o88.save.\n: org.apache.spark.api.python.PythonException: An "
                         "exception was thrown from the Python worker. Please see the stack trace below.\nTraceback "
                         "(most recent call last):\n  File \"/x/lf_library/matcher.py\", line 95, in _prepare\n    codes "
                         "= np.frombuffer(raw.decode('utf-8').encode('utf-32-le'), dtype=np.uint32)\nMemoryError\n\n\tat "
                         "org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(...)\n")
    assert _summary(cause) == "MemoryError"
    err = DeltaWriteError(f"writing Delta table /lake/votes failed before commit; no table was created: {_summary(cause)}")
    err.__cause__ = cause
    cfg = config_from_dict({"source": {"path": "/data/docs"}, "lfs": {"modules": ["m"]}})
    with pytest.raises(InputDataError) as said:
        apply_lfs._raise_out_of_memory(cfg, err)
    assert str(said.value) == (
        "writing Delta table /lake/votes failed before commit; no table was created: MemoryError (a Python worker ran "
        "out of memory applying the LFs to a batch of up to apply.batch_size=10000 rows: MemoryError); lower "
        "apply.batch_size (for long texts, tens of KB a row, a few hundred) or give the Python workers more memory "
        "(spark.executor.pyspark.memory)")
    # numpy's allocation failure is one too; an LF's own error and the JVM's heap are left to the line they have
    err.__cause__ = RuntimeError(str(cause).replace("\nMemoryError\n", "\nnumpy._core._exceptions._ArrayMemoryError: "
                                                                        "Unable to allocate 83.1 MiB\n"))
    with pytest.raises(InputDataError, match=r"rows: numpy\._core\._exceptions\._ArrayMemoryError: Unable to alloc"):
        apply_lfs._raise_out_of_memory(cfg, err)
    apply_lfs._raise_out_of_memory(cfg, DeltaWriteError("writing ... failed before commit: KeyError: 'x'"))
    apply_lfs._raise_out_of_memory(cfg, DeltaWriteError("writing ... failed before commit: java.lang.OutOfMemoryError: "
                                                        "Java heap space"))
