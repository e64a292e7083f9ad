"""lakelabel's Spark jobs: one module per job, ``runtime`` for what they share."""

from jobs.runtime import pyworker as _pyworker

_pyworker.tune()  # a no-op except in a PySpark Python worker on Python 3.10 or 3.11 (jobs/runtime/pyworker.py)
