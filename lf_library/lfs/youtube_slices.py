"""A slice of the YouTube comments that ``lakelabel analyze`` reports on (conf/youtube.yaml).

``long_comment``: comments over 200 characters. Short comments are easy (``sql_short_comment``
votes ham on them); long ones are where self-promotion hides, so this is where accuracy drops.
"""

from __future__ import annotations

from typing import Any

from lf_library import slicing_function


@slicing_function(fields=["CONTENT"])
def long_comment(x: Any) -> bool:
    """A comment of more than 200 characters."""
    return len(x.CONTENT or "") > 200
