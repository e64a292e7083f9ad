"""The one error hierarchy of lakelabel.

Every error raised on purpose by lakelabel derives from :class:`LakelabelError`; errors about bad
input values also derive from :class:`ValueError`, so callers catching ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = [
    "LakelabelError",
    "LFError",
    "LFConfigError",
    "ConfigError",
    "InputDataError",
    "LFErrorRateExceeded",
    "LFTimeoutError",
    "TransientError",
]


class LakelabelError(Exception):
    """Base class of every error lakelabel raises on purpose."""


class LFError(LakelabelError):
    """A labeling function cannot run as asked (e.g. a SQL LF called row by row)."""


class LFConfigError(LakelabelError, ValueError):
    """A labeling function or registry is misconfigured (bad label, pattern, name, module...)."""


class ConfigError(LakelabelError, ValueError):
    """A job configuration value is invalid."""


class InputDataError(LakelabelError, ValueError):
    """The input data does not fit what the LFs or the job expect (missing column, bad type...)."""


class LFErrorRateExceeded(LakelabelError):
    """An LF raised on more rows than the configured error-rate budget allows."""


class LFTimeoutError(LakelabelError):
    """An LF took longer than ``apply.lf_timeout_seconds`` on one batch (it hangs, or is far too slow)."""


class TransientError(LakelabelError):
    """A fault a retry may fix (exit code 3): a worker lost after Spark's retries, a Delta commit
    conflict with a concurrent writer, a busy MLflow store, a tracking server that does not answer."""
