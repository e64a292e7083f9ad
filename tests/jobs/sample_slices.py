"""Slices for the analyze tests (rows of tests.jobs.test_pipeline.make_rows): one of each kind."""

from lf_library import keyword_slice, regex_slice, slicing_function, sql_slice

has_love = keyword_slice("has_love", ["love"])
exclaims = regex_slice("exclaims", r"!{2,}")
few_stars = sql_slice("few_stars", "stars <= 2")


@slicing_function(fields=["text"])
def long_text(x):
    return len(x.text) > 15
