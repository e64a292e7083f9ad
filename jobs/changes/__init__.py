"""What changed between runs: the runs that wrote labels, and drift between consecutive runs.

* :mod:`jobs.changes.runs`: :class:`RunRecord`, the runs that wrote the labels table, read from
  their run folders' summaries (table versions, LF versions, label space, model).
* :mod:`jobs.changes.drift`: per-run statistics (LF coverage and votes, labels, conflicts,
  confidence) from the aggregate's sufficient statistics and the fitted model, compared with the
  previous run; thresholds from ``drift.*``.

The commands are :mod:`jobs.diff` (``lakelabel diff``) and :mod:`jobs.explain` (``lakelabel explain``).
"""
