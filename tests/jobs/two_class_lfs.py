"""An LF that votes both classes of the Spark tests' label space (suggest's ``same_as`` on one of its classes)."""

from lf_library import ABSTAIN, labeling_function

LABEL_SPACE = ("neg", "pos")


@labeling_function()
def awful_or_ok(x):
    """neg on every row that says "awful", pos on the rows that say only "ok"."""
    return 0 if "awful" in x.text else 1 if x.text == "ok" else ABSTAIN
