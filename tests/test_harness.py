"""The test harness itself (tests/conftest.py): what a test sees does not depend on the tests before it."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture()
def nonpropagating_pyspark_logger():
    """A query-context logger as pyspark leaves it after it logs an analysis error: a PySparkLogger, not propagating."""
    PySparkLogger = pytest.importorskip("pyspark.logger.logger").PySparkLogger
    logger = PySparkLogger.getLogger("lakelabel-tests-query-context")
    logger.propagate = False
    yield logger
    logger.propagate = True


def test_caplog_keeps_pytests_format_after_pyspark_left_a_nonpropagating_logger(nonpropagating_pyspark_logger, caplog):
    # The call phase attached pytest's handler to that logger: its formatter must stay pytest's, not pyspark's JSON.
    with caplog.at_level(logging.WARNING, logger="jobs.compaction"):
        logging.getLogger("jobs.compaction").warning('compact it: python -c "print(1)"')
    assert 'compact it: python -c "print(1)"' in caplog.text, caplog.text
    assert not caplog.text.startswith("{"), caplog.text


def test_a_worker_hears_that_the_controllers_label_studio_exited(tmp_path):
    """Under pytest-xdist the controller's Label Studio writes server.json, then its exit code to ``exited`` if it
    dies: the worker's wait fails at once with the log, not after START_TIMEOUT of /health polls."""
    import json
    import time

    from tests import label_studio_server

    log = tmp_path / "label-studio.log"
    log.write_text("django.db.utils.OperationalError: disk I/O error\n")
    port = label_studio_server.free_port()  # nothing listens there
    (tmp_path / "server.json").write_text(json.dumps({"base": f"http://127.0.0.1:{port}", "log": str(log)}))
    (tmp_path / "exited").write_text("1")
    started = time.monotonic()
    with pytest.raises(AssertionError, match="label-studio exited with 1: django.db.utils.OperationalError"):
        label_studio_server.SharedServer(tmp_path).wait()
    assert time.monotonic() - started < 30
    (tmp_path / "server.json").write_text(json.dumps({"error": "AssertionError: label-studio==1.23.2 could not be installed"}))
    with pytest.raises(AssertionError, match="could not be installed"):
        label_studio_server.SharedServer(tmp_path).wait()


def test_the_controller_starts_things_only_for_tests_the_command_line_names(monkeypatch, tmp_path):
    """What the pytest-xdist controller reads from its command line (tests/conftest.py): files, folders and nodes."""
    from types import SimpleNamespace

    from tests import conftest

    def named(*args, cwd=conftest.REPO):
        config = SimpleNamespace(args=list(args), invocation_params=SimpleNamespace(dir=cwd))
        return {path: names for path, (_, names) in conftest._named_by_args(config).items()}

    master_file, master_name = conftest.MASTER_DOWN_TEST.split("::")
    everything = named("tests")
    assert everything[conftest.LABEL_STUDIO_TEST] is None and everything[master_file] is None
    assert conftest.LABEL_STUDIO_TEST not in named("tests/labelmodel")
    assert named("jobs/test_session.py::test_java_home_wins", cwd=conftest.REPO / "tests") == {
        master_file: {"test_java_home_wins"}}
    assert named(f"{conftest.MASTER_DOWN_TEST}[x]", "tests/jobs/test_session.py::test_java_home_wins")[master_file] == {
        master_name, "test_java_home_wins"}
    assert named("tests/jobs/test_session.py::test_java_home_wins", "tests/jobs")[master_file] is None

    def selected(expression):
        return conftest._marks_selected(SimpleNamespace(option=SimpleNamespace(markexpr=expression)), {"spark", "slow"})

    assert selected("") and selected("spark") and selected("slow and not cluster_native")
    assert not selected("not slow") and not selected("not (")


@pytest.mark.spark
def test_the_suites_jvms_keep_their_temporary_files_in_the_sessions_basetemp(spark, tmp_path_factory):
    """Spark's folders and the JVM's own files go to a folder of the session's basetemp, where a drill's SIGKILLed JVM
    leaves them for pytest to delete, not to /tmp (tests/conftest.py); the children inherit what this JVM got."""
    import os
    from pathlib import Path

    from tests import conftest

    folder = Path(os.environ[conftest.SPARK_LOCAL_DIRS_ENV])
    if folder.name != "jvm-tmp":
        pytest.skip(f"SPARK_LOCAL_DIRS={folder} is your own")
    # Under pytest-xdist the controller made it; a worker's basetemp is a folder in the controller's.
    assert tmp_path_factory.getbasetemp().resolve().is_relative_to(folder.parent.resolve())
    jvm, conf = spark.sparkContext._jvm, spark.sparkContext._jsc.sc().conf()
    assert Path(jvm.org.apache.spark.util.Utils.getLocalDir(conf)).parent == folder  # spark-*, and blockmgr-* beside
    if f"-Djava.io.tmpdir={folder}" in os.environ.get("SPARK_SUBMIT_OPTS", ""):  # the suite's flags, not your own
        assert jvm.java.lang.System.getProperty("java.io.tmpdir") == str(folder)  # artifacts-*, snappy-*, liblz4-*
