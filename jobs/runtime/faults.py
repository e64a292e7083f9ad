"""Which failures are transient: the CLI gives them exit code 3 (a retry may succeed), not 2 or 1.

Orchestrators retry on 3 and page someone on 2 (fix your input) or 1 (a bug). The patterns below
are the messages of the faults seen here: a Python worker or executor lost after Spark's task
retries, a Delta commit that lost a race with a concurrent writer, a SQLite MLflow store that is
locked or being created by another process at the same time.
"""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"Python worker exited unexpectedly|PythonException.*crashed|Worker lost|ExecutorLostFailure"
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


def transient_reason(err: BaseException) -> str | None:
    """A one-line reason when ``err`` (or an error it was raised from) is transient, else None."""
    seen = 0
    while err is not None and seen < 8:
        text = f"{type(err).__name__}: {err}"
        for pattern, reason in _PATTERNS:
            if re.search(pattern, text, flags=re.S):
                first = text.strip().splitlines()[0][:300]
                return f"{reason} ({first})"
        err = err.__cause__ or err.__context__
        seen += 1
    return None
