"""LFs of multi-label tasks: each tag is a binary task whose LFs vote the tag or its absence.

A config's ``multi_label: {name, tags}`` (README "Several tasks at once") turns a tag list into
one binary task per tag, ``<name>_<tag>``, with the label space :func:`tag_space` ``(tag)`` =
``("not_<tag>", "<tag>")``. The label space is distinct per tag, so an LF module holding LFs of
many tags routes each LF to its tag's task by label space, as any multi-task config does.

Examples
--------
>>> refund = tag_keyword_lf("tag_refund_words", "refund", ["refund", "money back"])
>>> refund.label_space
('not_refund', 'refund')
>>> no_refund = tag_keyword_lf("tag_no_refund_thanks", "refund", ["thank you"], present=False)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lf_library.builders import keyword_lf, regex_lf, sql_lf
from lf_library.core import LabelingFunction
from lf_library.errors import LFConfigError

__all__ = ["TAG_ABSENT", "TAG_PRESENT", "tag_space", "tag_keyword_lf", "tag_regex_lf", "tag_sql_lf", "check_tag"]

TAG_ABSENT, TAG_PRESENT = 0, 1
"""Class ids of a tag task: ``0`` the tag is absent, ``1`` it is present."""

_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_tag(tag: Any) -> str:
    """``tag`` if it is a valid tag name (letters, digits, ``_``; a letter first), else raise."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise LFConfigError(
            f"tag {tag!r} is not a valid tag name: use letters, digits and '_' starting with a letter "
            f"(it names a task, a column of the labels table and MLflow metrics)"
        )
    return tag


def tag_space(tag: str) -> tuple[str, str]:
    """The label space of tag ``tag``'s binary task: ``("not_<tag>", "<tag>")``."""
    tag = check_tag(tag)
    return (f"not_{tag}", tag)


def _label(tag: str, present: bool) -> str:
    return tag_space(tag)[1 if present else 0]


def tag_keyword_lf(
    name: str, tag: str, keywords: Sequence[str], *, present: bool = True, field: str = "text", **options: Any
) -> LabelingFunction:
    """A keyword LF that votes ``tag`` (``present=True``) or its absence when a keyword occurs.

    ``options`` go to :func:`lf_library.keyword_lf` (``case_sensitive``, ``whole_word``).
    """
    return keyword_lf(name, keywords, _label(tag, present), field=field, label_space=tag_space(tag), **options)


def tag_regex_lf(
    name: str, tag: str, pattern: str, *, present: bool = True, field: str = "text", **options: Any
) -> LabelingFunction:
    """A regex LF (RE2 syntax) that votes ``tag`` or its absence when ``pattern`` matches."""
    return regex_lf(name, pattern, _label(tag, present), field=field, label_space=tag_space(tag), **options)


def tag_sql_lf(name: str, tag: str, condition: str, *, present: bool = True) -> LabelingFunction:
    """A Spark SQL LF that votes ``tag`` or its absence where ``condition`` holds."""
    return sql_lf(name, condition, _label(tag, present), label_space=tag_space(tag))
