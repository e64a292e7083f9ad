"""How a lakelabel command is stopped by a signal, and what it committed before it was.

SIGTERM (an orchestrator) and SIGINT (Ctrl-C) raise :class:`Terminated` and :class:`Interrupted`, which
unwind like an error so every stage puts its tables back; the handler first cancels the running Spark
jobs. A stage job records its table commits (:func:`note_commit`) so that the exit line of a signal
after them says they stand; ``run`` forgets them when it puts its tables back. :func:`stopped_by_signal`,
:func:`signal_name` and :func:`signal_error` let a job's cleanup tell a signal from a failure.
:func:`jobs.runtime.exits.guarded` reads this state to choose the exit code (130 / 143).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jobs.cli")


class Terminated(BaseException):
    """SIGTERM from an orchestrator: unwinds like Ctrl-C so every stage restores its tables."""


class Interrupted(BaseException):
    """Ctrl-C, raised by lakelabel's SIGINT handler. Not a KeyboardInterrupt: Py4J logs a traceback
    for a KeyboardInterrupt that lands in one of its calls."""


# Which signal stopped the command: what runs after it (a cleanup that fails) may surface as another
# error than the Interrupted or Terminated the handler raised; the exit code follows the signal all the same.
_signalled: str | None = None


# Per signal: what the handler records, what it raises, and what a second one of it does. A second SIGTERM
# is ignored, so it cannot cut the restore of the tables short (an orchestrator that will not wait sends
# SIGKILL); a second Ctrl-C interrupts the cleanup (Python's default), and the exit line says so.
_STOPS = {
    signal.SIGTERM: ("terminated", Terminated, signal.SIG_IGN),
    signal.SIGINT: ("interrupted", Interrupted, signal.default_int_handler),
}


# Table commits of this command (a stage job's votes or labels): a signal after them cannot take them back, so
# the exit line must not say the tables are as before. A run that puts its tables back forgets them.
_commits: list[str] = []
# Commits the command failed to put back (:func:`put_back`): they stand whatever else it puts back.
_unrestored: list[str] = []
_run: list[str | None] = [None]


def note_commit(what: str) -> None:
    """Record a table commit of the running command (``what``: "labels <path> v<N>")."""
    _commits.append(what)


def note_run(run_id: str | None) -> None:
    """The run id the running command works under (its exit line names it for a rerun)."""
    _run[0] = run_id


def run_id() -> str | None:
    """The run id :func:`note_run` recorded for the running command, or None."""
    return _run[0]


def forget_commits() -> None:
    """The running command put its tables back (a failed or stopped ``run``): no commit of it stands."""
    _commits.clear()


def put_back(what: str, restore: Callable[[], None]) -> None:
    """Put a table back after the running command failed or was stopped (``restore``; ``what``: "votes <path>
    v<N>", the commit it takes back). When that fails too (a full disk takes the restore's commit as well), the
    commit stands: it is recorded, so the exit line says so after the command's own error, which it does not
    replace, and the caller goes on putting the other tables back."""
    try:
        restore()
    except Exception as err:  # noqa: BLE001 - the command's own error is the one to raise
        from jobs.runtime.faults import error_line

        log.debug("putting %s back failed", what, exc_info=True)
        _unrestored.append(f"{what} (putting it back failed: {error_line(err)})")


def stopped_by_signal(err: BaseException | None = None) -> bool:
    """Whether a signal stopped the command (``err``, what ends it: the signal's own exception, or the error
    the handler's cancelling of the Spark jobs made the running call raise, a collect's ``Py4JJavaError``)."""
    return _signalled is not None or (err is not None and not isinstance(err, Exception))


def signal_name() -> str:
    """How the running command was stopped, for a record of it ("" when no signal stopped it)."""
    return {"terminated": "terminated (SIGTERM)", "interrupted": "interrupted (Ctrl-C)"}.get(_signalled or "", "")


def signal_error(err: BaseException) -> BaseException:
    """What to raise once the tables are back after a signal: the signal's exception, even when the Spark
    call it cut short raised another (so the exit line says the tables are as before, not that the
    cleanup failed)."""
    if isinstance(err, Exception) and _signalled is not None:
        return Terminated() if _signalled == "terminated" else Interrupted()
    return err


def _on_signal(signum: int, frame: Any) -> None:
    global _signalled
    name, error, then = _STOPS[signum]
    signal.signal(signum, then)
    _signalled = name
    _stop_spark_jobs()
    raise error()


def install_signal_handlers() -> dict[int, Any]:
    """Install the SIGTERM and SIGINT handlers (from the main thread; a notebook's worker thread keeps
    its own). Called again once Spark has started: PySpark's SparkContext installs its own SIGINT
    handler, which cancels the jobs through the Py4J connection the interrupted call still holds and
    left Ctrl-C to surface as that call's error (exit 2)."""
    previous: dict[int, Any] = {}
    try:
        for signum in _STOPS:
            previous[signum] = signal.signal(signum, _on_signal)
    except ValueError:  # not the main thread
        pass
    return previous


def _stop_spark_jobs() -> None:
    """Cancel the running Spark jobs and free this thread's Py4J connection (from the SIGTERM handler).

    The signal usually lands while the main thread waits in a Py4J call (a ``collect``). Its
    connection then belongs to a JVM thread still running that call: any later call on it (the
    cleanup's) would wait behind it, for as long as the job runs (forever, with a hung LF). So the
    connection is closed, the next call opens a new one, and the jobs are cancelled through it.
    """
    if "pyspark" not in sys.modules:
        return
    try:
        from pyspark import SparkContext

        sc = SparkContext._active_spark_context
        if sc is None:
            return
        client = sc._gateway._gateway_client
        connection = client.get_thread_connection() if hasattr(client, "get_thread_connection") else None
        if connection is not None:
            connection.close(reset=True)
        sc.cancelAllJobs()
    except Exception as err:  # noqa: BLE001 - best effort; the unwinding cleanup still runs
        log.debug("could not cancel the Spark jobs: %s", err)



def begin_command() -> None:
    """A command starts (:func:`jobs.runtime.exits.guarded`): no signal has stopped it, it has committed nothing."""
    global _signalled
    _signalled = None
    _commits.clear()
    _unrestored.clear()
    _run[0] = None


def end_command() -> None:
    """A command ended: a notebook's next call is not stopped (its commits are kept until the next begins)."""
    global _signalled
    _signalled = None


def stop_signal() -> str | None:
    """Which signal stopped the running command: "terminated", "interrupted", or None."""
    return _signalled


def commits() -> list[str]:
    """The table commits of the running command that stand (:func:`note_commit`, less those a failed run put back;
    then those it failed to put back, :func:`put_back`), in order."""
    return [*_commits, *_unrestored]
