"""What lakelabel changes in PySpark's Python workers: one fix of Python 3.10 and 3.11's import caches.

Before every task a PySpark worker calls ``importlib.invalidate_caches()`` (``pyspark.worker_util
.setup_spark_files``). On Python 3.10 and 3.11 that makes every ``zipimporter`` re-read its whole archive's
directory at once (CPython gh-103200, made lazy in 3.12), and a worker holds one importer per package it
imported from ``pyspark.zip`` plus the ``spark-core`` jar Spark puts on its path (5,362 entries): about
0.1 s of CPU per task per worker, paid again by every task, that read nothing new (a ``--py-files``
package adds its own archive, re-read just the same). With this fix the test suite's Python workers used a
third less CPU, the pipeline tests' half (benchmarks/RESULTS.md, session 36).

:func:`tune` makes ``zipimporter.invalidate_caches`` re-read an archive only when the file changed since it
was last read (its modification time or size), which keeps what the invalidation is for. It runs when a
worker first imports lakelabel (``jobs/__init__.py``), so each worker's later tasks skip the re-reads; it
does nothing in any other process, or on Python 3.12 and later.
"""

from __future__ import annotations

import os
import sys

_TUNED: list[bool] = []


def in_pyspark_worker() -> bool:
    """Whether this process is a PySpark Python worker (forked by ``pyspark.daemon``, or ``pyspark.worker``
    run alone)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) in ("pyspark.daemon", "pyspark.worker")


def tune() -> None:
    """Apply the fix once, in a PySpark worker on Python older than 3.12."""
    if _TUNED or sys.version_info >= (3, 12) or not in_pyspark_worker():
        return
    _TUNED.append(True)
    patch_zipimport()


def patch_zipimport() -> None:
    """Make ``zipimporter.invalidate_caches`` skip archives unchanged since their directory was read."""
    import zipimport

    original = zipimport.zipimporter.invalidate_caches
    read_at: dict[str, tuple[int, int] | None] = {}  # archive -> (mtime_ns, size) when last read

    def invalidate_caches(self) -> None:
        try:
            stat = os.stat(self.archive)
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        files = zipimport._zip_directory_cache.get(self.archive)
        if stamp is not None and files is not None and read_at.get(self.archive) == stamp:
            self._files = files  # the directory another importer of the same archive read
            return
        original(self)  # stat before the read: a change during it is read again next time
        read_at[self.archive] = stamp

    invalidate_caches.__doc__ = original.__doc__
    zipimport.zipimporter.invalidate_caches = invalidate_caches
