"""An LF that reads a column its fields= leaves out (tests/jobs/test_pipeline.py: the error budget's fix)."""

from lf_library import ABSTAIN, labeling_function

LABEL_SPACE = ("neg", "pos")


@labeling_function(fields=["text"])
def many_stars(x):
    return 1 if (x.stars or 0) >= 4 else ABSTAIN


@labeling_function(vectorized=True, fields=["text"])
def many_stars_vectorized(df):
    return (df["stars"] >= 4).astype(int).replace(0, ABSTAIN)
