"""Errors of the local Delta IO (:mod:`jobs.delta_io` re-exports them) and their message helper."""

from __future__ import annotations

import re

from lf_library.errors import LakelabelError


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
            if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b[^:]*:", line):
                return line[:500]
    # Py4J: "An error occurred while calling o123.save." is followed by the Java exception.
    if len(lines) > 1 and re.match(r"^An error occurred while calling ", lines[0]):
        return f"{lines[0]} {lines[1]}"[:500]
    return (lines[0] if lines else type(err).__name__)[:500]
