"""An LF of tests/jobs/test_task_masks.py that raises on some rows (an error record, no bit in its task's mask)."""

from __future__ import annotations

from lf_library import ABSTAIN, labeling_function

TOPIC = ("billing", "technical")


@labeling_function(label_space=TOPIC, fields=["id", "text"])
def py_boom_invoice(x):
    if x.id % 10 == 3:
        raise ValueError(f"boom on row {x.id}")
    return 0 if "invoice" in x.text else ABSTAIN
