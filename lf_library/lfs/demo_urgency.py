"""LFs of the demo's second task, ticket urgency (:mod:`jobs.demo.urgency` generates the data).

Subject-line cues are precise but cover about half the rows; the priority, channel and tier
rules cover more and are noisier. Used by ``lakelabel demo --tasks`` together with
:mod:`lf_library.lfs.demo` (each module's LFs go to the task of its ``LABEL_SPACE``).
"""

from __future__ import annotations

from lf_library import keyword_lf, sql_lf

LABEL_SPACE: tuple[str, ...] = ("routine", "urgent")
"""Must equal :data:`jobs.demo.urgency.URGENCY_SPACE`."""

kw_subject_urgent = keyword_lf(
    "kw_subject_urgent", ["urgent", "asap", "blocking", "down for all users", "immediately"], "urgent",
    field="subject",
)
kw_subject_routine = keyword_lf(
    "kw_subject_routine", ["no rush", "quick question", "when you have a moment", "fyi", "low priority"], "routine",
    field="subject",
)
sql_priority_high = sql_lf("sql_priority_high", "priority >= 4", "urgent")
sql_priority_low = sql_lf("sql_priority_low", "priority <= 1", "routine")
sql_phone_is_urgent = sql_lf("sql_phone_is_urgent", "channel = 'phone' AND priority >= 3", "urgent")
sql_free_tier_routine = sql_lf("sql_free_tier_routine", "customer_tier = 'free' AND priority <= 2", "routine")
