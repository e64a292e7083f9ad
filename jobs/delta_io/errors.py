"""Errors of the local Delta IO (:mod:`jobs.delta_io` re-exports them) and their message helper."""

from __future__ import annotations

import re

from jobs.runtime.faults import error_line
from lf_library.errors import InputDataError, LakelabelError


class DeltaWriteError(LakelabelError, RuntimeError):
    """A Delta write failed or was refused; the table is left at its previous version."""


class SourceReadError(LakelabelError, ValueError):
    """A source path is missing, of the wrong kind, or unreadable by the local reader."""


def _summary(err: BaseException) -> str:
    """The line of an exception that says what went wrong (the last one of a Python worker's
    traceback wrapped by Spark, else the first: delta-rs appends Rust backtraces)."""
    text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in text:
        for line in reversed(lines):
            # "KeyError: 'x'", or a bare "MemoryError" (an exception raised without a message).
            if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b([^:]*:|$)", line):
                return line[:500]
    # delta-rs: its first line and the deepest of the causes it lists under it; Py4J: the Java exception too.
    return error_line(err)


def unreadable_delta_log(root: str, err: BaseException) -> InputDataError:
    """The error for a Delta table whose log delta-rs cannot read (a truncated or damaged commit file):
    bad input, which a retry does not fix (``err``: delta-rs' error; its first line is the reason)."""
    return InputDataError(
        f"Delta table {root}: its Delta log cannot be read ({_summary(err)}); the table is damaged: restore the "
        f"damaged file under {root.rstrip('/')}/_delta_log from a backup (or the table from a copy) and check the "
        f"table's history before the next run"
    )
