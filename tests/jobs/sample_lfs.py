"""A tiny LF library for the Spark tests: every LF kind, one that raises, one out of space."""

from lf_library import ABSTAIN, keyword_lf, labeling_function, regex_lf, sql_lf

LABEL_SPACE = ("neg", "pos")

good_words = keyword_lf("good_words", ["great", "love"], "pos")
bad_words = keyword_lf("bad_words", ["awful", "hate"], "neg")
exclaim = regex_lf("exclaim", r"!{2,}", "pos")
short = sql_lf("short_text", "length(text) < 12", "neg")


@labeling_function()
def stars(x):
    if x.stars is None:
        return ABSTAIN
    return 1 if x.stars >= 4 else 0 if x.stars <= 2 else ABSTAIN


@labeling_function()
def boom(x):
    if "boom" in x.text:
        raise RuntimeError("kaboom")
    return ABSTAIN


@labeling_function()
def out_of_space(x):
    return 7 if "seven" in x.text else ABSTAIN
