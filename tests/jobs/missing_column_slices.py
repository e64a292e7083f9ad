"""A slice reading a column the analyze tests' source lacks (``title``), beside one that is fine."""

from lf_library import keyword_slice

has_love = keyword_slice("has_love", ["love"])
love_in_title = keyword_slice("love_in_title", ["love"], field="title")
