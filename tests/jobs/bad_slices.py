"""A slicing function that returns a string instead of a bool (the analyze job must name it)."""

from lf_library import slicing_function


@slicing_function(fields=["text"])
def says_yes(x):
    return "yes" if "love" in x.text else False
