"""The urgency LFs of tests/jobs/multitask_lfs.py alone: that task as a single-task config.

The same LF objects (so the same names and versions), under the module's own ``LABEL_SPACE``.
"""

from __future__ import annotations

from tests.jobs.multitask_lfs import URGENCY, kw_asap, kw_no_rush, py_low_priority, sql_high_priority

LABEL_SPACE = URGENCY
LFS = [kw_asap, kw_no_rush, py_low_priority, sql_high_priority]
