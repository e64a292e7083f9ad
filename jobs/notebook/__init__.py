"""What the notebooks in ``notebooks/`` call: one function per cell, the same on a laptop and a cluster.

* :mod:`jobs.notebook.develop`: :func:`load_notebook_config`, :func:`widget_count`, :func:`try_lf` (a draft
  LF next to the library on a sample of the source).
* :mod:`jobs.notebook.inspect`: :func:`lineage`, :func:`labels_with_lineage`, label distribution
  and confidence histogram of the latest run.
* :func:`explain_row` (:mod:`jobs.explain`): why one row got its label (votes, weights, contributions).
"""

from __future__ import annotations

from jobs.explain import explain_row, format_text as explanation_text
from jobs.notebook.develop import (LFTrial, draw_sample, load_notebook_config, require_single_task, try_lf,
                                  widget_count)
from jobs.notebook.inspect import (Lineage, confidence_histogram, label_distribution, labels_with_lineage, lineage,
                                   run_metrics)

__all__ = [
    "LFTrial",
    "Lineage",
    "confidence_histogram",
    "draw_sample",
    "explain_row",
    "explanation_text",
    "label_distribution",
    "labels_with_lineage",
    "lineage",
    "load_notebook_config",
    "require_single_task",
    "run_metrics",
    "try_lf",
    "widget_count",
]
