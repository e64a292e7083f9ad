"""LFs of tests/jobs/test_multitask.py: two tasks and two tags in one module, routed by label space.

The module has no LABEL_SPACE: every LF carries its own, which decides its task.
"""

from __future__ import annotations

from lf_library import ABSTAIN, keyword_lf, labeling_function, sql_lf
from lf_library.tags import TAG_ABSENT, tag_keyword_lf, tag_space

TOPIC = ("billing", "technical")
URGENCY = ("routine", "urgent")

kw_invoice = keyword_lf("kw_invoice", ["invoice", "refund", "charged"], "billing", label_space=TOPIC)
kw_crash = keyword_lf("kw_crash", ["crash", "error", "login"], "technical", label_space=TOPIC)
kw_app = keyword_lf("kw_app", ["app"], "technical", label_space=TOPIC)

kw_asap = keyword_lf("kw_asap", ["asap", "urgent", "immediately"], "urgent", label_space=URGENCY)
kw_no_rush = keyword_lf("kw_no_rush", ["no rush", "whenever"], "routine", label_space=URGENCY)
sql_high_priority = sql_lf("sql_high_priority", "priority >= 3", "urgent", label_space=URGENCY)


@labeling_function(label_space=URGENCY, fields=["priority"])
def py_low_priority(x):
    return 0 if x.priority == 1 else ABSTAIN


tag_refund_words = tag_keyword_lf("tag_refund_words", "refund", ["refund", "money back"])
tag_refund_not_app = tag_keyword_lf("tag_refund_not_app", "refund", ["app", "crash"], present=False)
tag_login_words = tag_keyword_lf("tag_login_words", "login", ["login", "password"])


@labeling_function(label_space=tag_space("login"), fields=["text"])
def py_login_not_billing(x):
    return TAG_ABSENT if "invoice" in x.text else ABSTAIN
