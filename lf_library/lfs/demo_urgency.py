"""LFs of the demo's second task, ticket urgency (:mod:`jobs.demo.urgency` generates the data).

Subject-line cues are precise but cover about half the rows; the priority, channel and tier
rules cover more and are noisier; one LF is worse than random (neutral subjects are mostly
routine). On 60k generated rows (seed 0), majority vote is right on 76.3% of rows and the label
model on 80.5%; accuracy (on the rows an LF votes) and coverage:

========================  ========  ========
LF                        accuracy  coverage
========================  ========  ========
kw_subject_urgent         0.87      0.24
kw_subject_routine        0.91      0.28
sql_priority_high         0.85      0.18
sql_priority_low          0.91      0.22
sql_priority_mid_routine  0.81      0.34
sql_phone_is_urgent       0.72      0.13
sql_free_tier_routine     0.87      0.24
sql_enterprise_urgent     0.47      0.21
kw_help_needed_urgent     0.37      0.33
========================  ========  ======== Used by ``lakelabel demo --tasks`` together with
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
sql_priority_mid_routine = sql_lf("sql_priority_mid_routine", "priority = 2", "routine")
sql_enterprise_urgent = sql_lf("sql_enterprise_urgent", "customer_tier = 'enterprise'", "urgent")
# Worse than random: "help needed" and "issue with the service" are neutral subjects, mostly routine.
kw_help_needed_urgent = keyword_lf("kw_help_needed_urgent", ["help needed", "issue with the service"], "urgent",
                                   field="subject")
