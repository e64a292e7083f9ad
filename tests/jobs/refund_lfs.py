"""The refund tag LFs of tests/jobs/multitask_lfs.py alone (tests/jobs/test_task_commands.py's tag task)."""

from __future__ import annotations

from tests.jobs.multitask_lfs import tag_refund_not_app, tag_refund_words

LFS = [tag_refund_not_app, tag_refund_words]
