"""A time budget per LF per batch, so one LF that hangs on a row cannot block a job forever.

Executor side, pure Python: :func:`evaluate_within_budget` wraps
:func:`lf_library.apply.evaluate_batch` and arms a ``SIGALRM`` timer (``signal.setitimer``) each
time an LF starts on the batch. When an LF outlives its budget, the alarm interrupts it (Python
code, including ``time.sleep`` and loops; not a C call that holds the interpreter, such as one
regular expression match), the LF's votes on that batch become abstains with one ``timeout``
error record on the row it was working on, and the LF is skipped for the rest of the partition.
The apply job then fails, naming the LF and the row id (:class:`~lf_library.errors.LFTimeoutError`).
Nothing is committed.

Signals work only in a process's main thread, which is where PySpark's Python workers run LFs;
elsewhere (a notebook's worker thread) the budget is off.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lf_library.apply import BatchVotes, LFRowError, _run_rowwise, _run_vectorized, evaluate_batch
from lf_library.core import ABSTAIN, LabelingFunction

__all__ = ["LFBudget", "evaluate_within_budget", "TIMEOUT_KIND"]

TIMEOUT_KIND = "timeout"
_ROW_LOOPS = {_run_rowwise.__code__, _run_vectorized.__code__}


class _TimedOut(BaseException):
    """Raised by the alarm inside the LF; a BaseException so the LF's own ``except Exception`` lets it pass."""

    def __init__(self, row_index: int | None) -> None:
        super().__init__(row_index)
        self.row_index = row_index


def _row_being_evaluated(frame: Any) -> int | None:
    """The batch row index the interrupted LF was on, read from lakelabel's row loop (None: whole batch)."""
    while frame is not None:
        if frame.f_code in _ROW_LOOPS:
            i = frame.f_locals.get("i")
            if frame.f_code is _run_rowwise.__code__:
                # The rows run in C (``out.extend(map(...))``), which appends each vote as it
                # comes: the row being evaluated is the next one.
                out = frame.f_locals.get("out")
                return len(out) if isinstance(out, list) else None
            return int(i) if isinstance(i, int) else None
        frame = frame.f_back
    return None


def _on_alarm(signum: int, frame: Any) -> None:
    raise _TimedOut(_row_being_evaluated(frame))


class LFBudget:
    """Arms a ``seconds`` timer whenever an LF starts on a batch; remembers the LFs that ran out.

    Parameters
    ----------
    seconds : float
        The budget of one LF on one batch; ``0`` turns it off.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.enabled = self.seconds > 0 and threading.current_thread() is threading.main_thread()
        self.timed_out: set[str] = set()
        self._previous: Any = None

    def start(self, j: int = 0, lf: LabelingFunction | None = None) -> None:
        """Restart the timer (``evaluate_batch`` calls this before each LF)."""
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __enter__(self) -> LFBudget:
        if self.enabled:
            self._previous = signal.signal(signal.SIGALRM, _on_alarm)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)


def evaluate_within_budget(
    lfs: Sequence[LabelingFunction],
    batch: Any,
    budget: LFBudget,
    *,
    precomputed: Mapping[str, str],
    cardinality: int,
) -> BatchVotes:
    """:func:`~lf_library.apply.evaluate_batch` where each LF has ``budget.seconds`` on the batch.

    An LF that runs out abstains on the whole batch, leaves one error record of kind
    ``"timeout"`` on the row it was on (row 0 when it was not in a row loop), and abstains without
    running on later batches of this partition.
    """
    k = int(cardinality)
    errors: list[LFRowError] = []
    while True:
        active = [j for j, lf in enumerate(lfs) if lf.name not in budget.timed_out]
        running = [lfs[j] for j in active]
        current: list[int] = [0]

        def start(j: int, lf: LabelingFunction | None = None) -> None:
            current[0] = j
            budget.start()

        try:
            with budget:
                result = evaluate_batch(running, batch, precomputed=precomputed, cardinality=k, on_lf=start)
            break
        except _TimedOut as out:
            lf = running[current[0]]
            budget.timed_out.add(lf.name)
            j = active[current[0]]
            row = out.row_index if out.row_index is not None else 0
            message = f"ran longer than apply.lf_timeout_seconds={budget.seconds:g}s on one batch of {batch.num_rows} rows"
            errors.append(LFRowError(j, row, TIMEOUT_KIND, message))  # type: ignore[arg-type]
    if len(running) == len(lfs) and not errors:
        return result
    votes = np.full((batch.num_rows, len(lfs)), ABSTAIN, dtype=result.votes.dtype)
    votes[:, active] = result.votes
    remapped = [LFRowError(active[e.lf_index], e.row_index, e.kind, e.message) for e in result.errors]
    merged = sorted(remapped + errors, key=lambda e: (e.row_index, e.lf_index))
    return BatchVotes(votes=votes, errors=merged)
