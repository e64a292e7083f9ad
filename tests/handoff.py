"""Files a pytest-xdist controller hands to its workers (tests/conftest.py): written whole, waited for."""

from __future__ import annotations

import time
from pathlib import Path


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by a rename: a reader never sees half of it."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    partial.replace(path)


def wait_for(path: Path, timeout: float, what: str) -> str:
    """The text of ``path`` once it exists; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s ({path.parent})"
        time.sleep(1)
    return path.read_text()
