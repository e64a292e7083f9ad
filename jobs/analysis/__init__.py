"""The pieces of ``lakelabel analyze`` and ``lakelabel report`` (the jobs are jobs/analyze.py, jobs/report.py).

* :mod:`jobs.analysis.inputs`: which labels, votes, model and source one analysis reads;
* :mod:`jobs.analysis.rows`: every row scored once on Spark (tie shares, slices);
* :mod:`jobs.analysis.stats`: per-LF, pair, class, slice statistics from Spark aggregations;
* :mod:`jobs.analysis.buckets`: error buckets with example rows;
* :mod:`jobs.analysis.plots`: the report's matplotlib figures, drawn from the analysis document.
"""
