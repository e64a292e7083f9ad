"""LFs for the UCI YouTube Spam Collection (comments on five music videos; ham = 0, spam = 1).

Written from domain knowledge in the spirit of the Snorkel spam tutorial (self-promotion,
links, "check out", "subscribe", "please"; short comments and talk about the song are ham),
not fitted to the test video (file 5, Shakira). Every LF reads the ``CONTENT`` column.
Source data: T. C. Alberto, J. V. Lochter and T. A. Almeida, "TubeSpam: Comment Spam
Filtering on YouTube", ICMLA 2015 (UCI id 380).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from lf_library import ABSTAIN, keyword_lf, labeling_function, lexicon_lf, regex_lf, sql_lf

LABEL_SPACE: tuple[str, ...] = ("ham", "spam")
"""``CLASS`` 0 = ham, 1 = spam, as in the CSVs."""

HAM, SPAM = 0, 1

# --- spam: self-promotion ------------------------------------------------------------------

kw_subscribe = keyword_lf(
    "kw_subscribe",
    ["subscribe", "subscribed", "subscribers", "subscribing", "suscribe", "subs", "sub"],
    "spam",
    field="CONTENT",
)

re_check_out = regex_lf("re_check_out", r"\bcheck\b.{0,30}\bout\b", "spam", field="CONTENT")

re_link = regex_lf("re_link", r"https?://|www\.|\.com\b|/watch\?v=", "spam", field="CONTENT")

kw_my_channel = keyword_lf(
    "kw_my_channel",
    ["my channel", "my videos", "my video", "my music", "my page", "my song", "my songs", "my new song"],
    "spam",
    field="CONTENT",
)

kw_please = keyword_lf("kw_please", ["please", "plz", "pls", "plzz"], "spam", field="CONTENT")

kw_like_share = keyword_lf(
    "kw_like_share",
    ["like this comment", "thumbs up", "share", "follow me", "add me"],
    "spam",
    field="CONTENT",
)


@labeling_function(
    vectorized=True,
    resources={
        "first_person": r"\b(?:my|me|our|us|i'm|im)\b",
        "promotion": r"\b(?:watch|visit|check|support|listen|go to|view)\b",
    },
    fields=["CONTENT"],
)
def vec_self_promo(df: Any, first_person: str, promotion: str) -> np.ndarray:
    """First person plus a call to action ("support my ...", "listen to our ...") is self-promotion."""
    text = df["CONTENT"]
    hits = text.str.contains(first_person, case=False, regex=True, na=False) & text.str.contains(
        promotion, case=False, regex=True, na=False
    )
    return np.where(hits.to_numpy(dtype=bool), SPAM, ABSTAIN)


# --- ham: talk about the video ---------------------------------------------------------------

sql_short_comment = sql_lf("sql_short_comment", "length(CONTENT) < 20", "ham")

kw_song = keyword_lf(
    "kw_song",
    ["song", "songs", "lyrics", "voice", "beat", "dance", "dancing", "music video", "chorus"],
    "ham",
    field="CONTENT",
)

kw_fan_talk = keyword_lf(
    "kw_fan_talk",
    ["love", "lol", "haha", "cute", "omg", "queen", "king", "legend"],
    "ham",
    field="CONTENT",
)

lex_praise_vs_money = lexicon_lf(
    "lex_praise_vs_money",
    {
        "ham": ["beautiful", "awesome", "amazing", "favorite", "favourite", "catchy", "legend", "masterpiece"],
        "spam": ["money", "earn", "cash", "free", "gift card", "win", "prize", "click", "facebook", "instagram"],
    },
    field="CONTENT",
)


@labeling_function(resources={"milestone": re.compile(r"\b(?:billion|million)\b", re.IGNORECASE)}, fields=["CONTENT"])
def py_view_count(x: Any, milestone: re.Pattern[str]) -> int:
    """Remarks on the view count ("2 billion views!") are fans talking about the video."""
    text = x.CONTENT
    if text is None or milestone.search(text) is None:
        return ABSTAIN
    return HAM
