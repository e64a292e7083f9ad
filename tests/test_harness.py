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
