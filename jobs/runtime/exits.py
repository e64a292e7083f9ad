"""How a lakelabel command's outcome becomes its exit code and its one stderr line.

:func:`guarded` runs a command and turns whatever it ends with (its return, an error, a signal from
:mod:`jobs.runtime.signals`) into an exit code and at most one line; which errors are transient is
decided in :mod:`jobs.runtime.faults`.

Exit codes (documented in the README):

- ``0``: success; the output can be trusted.
- ``2``: a problem with the input, the config or an LF (:class:`~lf_library.errors.LakelabelError`), or the file
  system refusing a read or write (no space, no permission: :func:`~jobs.runtime.faults.storage_reason`);
  retrying without a fix fails the same way.
- ``3``: a transient fault (:class:`~lf_library.errors.TransientError`): a worker lost after retries,
  a Delta commit conflict with a concurrent writer, a busy MLflow store, a tracking server that does not
  answer. A retry may succeed.
- ``1``: anything unexpected.
- ``130`` / ``143``: interrupted (Ctrl-C) / terminated (SIGTERM); the tables are left as before the run.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Sequence

from jobs.runtime import signals
from jobs.runtime.signals import Interrupted, Terminated, install_signal_handlers
from lf_library.errors import LakelabelError, TransientError

log = logging.getLogger("jobs.cli")

EXIT_OK, EXIT_UNEXPECTED, EXIT_INPUT, EXIT_TRANSIENT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


def one_line(err: BaseException) -> str:
    from jobs.runtime.faults import error_line

    # Spark and Py4J errors carry JVM stack traces after the first line; delta-rs its causes.
    return error_line(err, 2000)


def few_names(names: Sequence[str], at_most: int = 10) -> str:
    """``names`` joined with commas, the first ``at_most`` of them and how many more: a line stays readable at
    300 LFs (an apply line listed 303 of them, 3,969 characters)."""
    names = list(names)
    more = f", ... ({len(names) - at_most} more)" if len(names) > at_most else ""
    return ", ".join(names[:at_most]) + more


# The one line the last guarded command ended with (None after a success), for its failure summary.
_last_line: list[str | None] = [None]


def _say(line: str) -> None:
    _last_line[0] = line
    print(line, file=sys.stderr)


def last_error() -> str | None:
    """The stderr line the last :func:`guarded` command failed with (None when it succeeded)."""
    return _last_line[0]


def guarded(call: Callable[[], int], debug: bool) -> int:
    """Run ``call`` and turn every outcome into an exit code and at most one stderr line."""
    _last_line[0] = None
    signals.begin_command()
    from jobs.runtime.progress import reset_executor_timeout

    reset_executor_timeout()
    previous = install_signal_handlers()
    try:
        return call()
    except BaseException as err:  # noqa: BLE001 - the CLI boundary turns every outcome into an exit code
        signalled = isinstance(err, (KeyboardInterrupt, Interrupted, Terminated))
        stop, committed = signals.stop_signal(), signals.commits()
        if signalled or (stop is not None and isinstance(err, Exception)):
            if debug:
                log.debug("stopped by a signal", exc_info=True)
            terminated = stop == "terminated" or isinstance(err, Terminated)
            what = "terminated (SIGTERM)" if terminated else "interrupted"
            check = "the tables may not be as before the run: check their history (DESCRIBE HISTORY) before the next run"
            if isinstance(err, KeyboardInterrupt) and stop == "interrupted":  # a second Ctrl-C cut the cleanup
                _say(f"lakelabel: interrupted again while the tables were being put back; {check}")
            elif committed:  # the signal came after the work was committed (in its MLflow logging, say)
                _say(f"lakelabel: {what} after it committed {', '.join(committed)}, which stand; its run record (MLflow, "
                     "summary) may be incomplete: rerun the command with the same --run-id to complete it")
            elif not signalled and not _says_cancelled(err):  # the signal, then another error (a restore that failed)
                _say(f"lakelabel: {what}, then {type(err).__name__}: {one_line(err)}; {check}")
            else:
                _say(f"lakelabel: {what}; the tables are as before the run")
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        return _exit_code(err, debug)
    finally:
        signals.end_command()  # a notebook's next call is not stopped
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _says_cancelled(err: BaseException) -> bool:
    """Whether ``err`` is, in its own words, a Spark job the signal handler cancelled (a stage command's collect
    or write cut short: nothing was committed), not a cleanup's failure that merely followed one."""
    from jobs.runtime.faults import says_cancelled

    return says_cancelled(err)


def _exit_code(err: BaseException, debug: bool) -> int:
    """The exit code of a failure that is not a signal, after its one stderr line (other
    BaseExceptions, such as SystemExit, go on)."""
    if not isinstance(err, Exception):
        raise err
    if debug:
        log.error("failed", exc_info=err)
    message, code = _outcome(err, debug)
    retry = " (transient, a retry may succeed)" if code == EXIT_TRANSIENT else ""
    committed = signals.commits()
    # A stage job's commit, then a failure (its MLflow logging, say): the tables are not as before. Unless the line
    # says that itself already (a summary file that could not be written after the work).
    if committed and not getattr(err, "says_what_stands", False):
        rerun = f"--run-id {signals.run_id()}" if signals.run_id() else "the same --run-id"
        message += (f"; it committed {', '.join(committed)} before that, which stand: its run record (MLflow, summary) "
                    f"may be incomplete: rerun the command with {rerun} to complete it")
    _say(f"lakelabel: error{retry}: {message}")
    return code


def _outcome(err: Exception, debug: bool) -> tuple[str, int]:
    """The one line and the exit code of ``err``."""
    from jobs.runtime.faults import (crash_reason, executor_environment_reason, storage_reason, task_input_error,
                                     tracking_refusal, was_cancelled)
    from jobs.runtime.progress import executor_timeout

    # The heartbeat cancelled the Spark jobs for want of executors: the cancelled job's error says only "cancelled".
    # Only that error: a later, unrelated failure (an executor came back before the cancel) keeps its own line.
    if executor_timeout() is not None and was_cancelled(err):
        return executor_timeout(), EXIT_TRANSIENT
    # Before the transient patterns: a task that cannot start its Python fails on every attempt
    # (and its stack trace may name a lost worker), and a retry fails the same way.
    # lakelabel's own errors word a refusal themselves (naming the server): not MLflow's error they were raised in.
    environment = executor_environment_reason(err) or (None if isinstance(err, LakelabelError) else tracking_refusal(err))
    if environment:
        return environment, EXIT_INPUT
    crash = crash_reason(err)
    if crash:
        return crash, EXIT_TRANSIENT
    # No space, no permission, a read-only mount, as the OS, delta-rs, SQLite or the JVM said it: lakelabel's own
    # errors name their table and path themselves (a Delta write that failed before its commit, say).
    if not isinstance(err, LakelabelError) and (storage := storage_reason(err)) is not None:
        return storage, EXIT_INPUT
    if isinstance(err, TransientError):
        return one_line(err), EXIT_TRANSIENT
    if isinstance(err, LakelabelError):
        # A write or read that failed because a worker died or a commit lost a race says so in its
        # cause: that is transient, not a problem with the input.
        transient_cause = err.__cause__ is not None and _transient(err.__cause__)
        return one_line(err), EXIT_TRANSIENT if transient_cause else EXIT_INPUT
    transient = _transient(err)
    if transient:
        return transient, EXIT_TRANSIENT
    if (said := task_input_error(err)) is not None:  # lakelabel's own words from inside a Spark task
        return said, EXIT_INPUT
    hint = "" if debug else " (rerun with --verbose for the traceback)"
    return f"{type(err).__name__}: {one_line(err)}{hint}", EXIT_UNEXPECTED


def _transient(err: BaseException) -> str | None:
    """A one-line reason when ``err`` is a fault a retry may fix, else None."""
    from jobs.runtime.faults import transient_reason

    return transient_reason(err)

