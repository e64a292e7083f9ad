"""lakelabel's LF library: labeling functions, builders, the registry and the executor-side apply."""

from __future__ import annotations

from lf_library.builders import keyword_lf, lexicon_lf, regex_lf, sql_lf
from lf_library.column import column_lf
from lf_library.core import ABSTAIN, LabelingFunction, labeling_function
from lf_library.errors import (
    ConfigError,
    InputDataError,
    LakelabelError,
    LFConfigError,
    LFError,
    LFErrorRateExceeded,
)
from lf_library.lexicon_files import load_lexicon
from lf_library.matcher import lexicon_file_lf
from lf_library.models import model_lf
from lf_library.registry import LFRegistry, load_registry
from lf_library.slicing import SlicingFunction, keyword_slice, regex_slice, slicing_function, sql_slice

__all__ = [
    "ABSTAIN",
    "LabelingFunction",
    "labeling_function",
    "LFRegistry",
    "load_registry",
    "keyword_lf",
    "regex_lf",
    "sql_lf",
    "lexicon_lf",
    "SlicingFunction",
    "slicing_function",
    "keyword_slice",
    "regex_slice",
    "sql_slice",
    "lexicon_file_lf",
    "load_lexicon",
    "column_lf",
    "model_lf",
    "LakelabelError",
    "LFError",
    "LFConfigError",
    "ConfigError",
    "InputDataError",
    "LFErrorRateExceeded",
]
