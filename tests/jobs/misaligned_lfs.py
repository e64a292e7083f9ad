"""A vectorized LF whose result is not one vote per row (it drops rows), beside one that is fine."""

from lf_library import keyword_lf, labeling_function

LABEL_SPACE = ("neg", "pos")

good_words = keyword_lf("good_words", ["great", "love"], "pos")


@labeling_function(vectorized=True, fields=["text"])
def drops_rows(df):
    votes = df["text"].str.contains("great").astype(int)
    return votes[votes == 1]  # only the voting rows: fewer values than rows, and their own index
