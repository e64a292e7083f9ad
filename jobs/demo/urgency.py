"""The demo's second task: how urgent a ticket is, with a subject line that hints at it.

Each ticket gets ``subject`` (a short line: an urgent cue, a routine cue or neither) and the hidden
truth ``true_urgency`` (``routine`` or ``urgent``). Urgency depends on the ticket's priority,
channel and customer tier; the subject's cues are right most of the time, not always. The draws
come from a counter-based hash of (seed, ticket index), independent of the topic's random
streams: the topic columns, and so the topic task's numbers, are the same as without this task.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["URGENCY_SPACE", "URGENCY_FIELDS", "urgency_columns"]

URGENCY_SPACE: tuple[str, ...] = ("routine", "urgent")
"""Class names of the urgency task (:mod:`lf_library.lfs.demo_urgency` votes in it)."""

URGENCY_FIELDS = [pa.field("subject", pa.string(), nullable=False), pa.field("true_urgency", pa.string(), nullable=False)]

_P_URGENT_BY_PRIORITY = np.array([0.05, 0.15, 0.45, 0.80])  # priority 1..4
_URGENT_CUES = ["URGENT:", "ASAP -", "Blocking our team:", "Down for all users:", "Need help immediately -"]
_ROUTINE_CUES = ["No rush -", "Quick question:", "When you have a moment:", "FYI:", "Low priority:"]
_NEUTRAL = ["Support request", "Ticket", "Help needed", "Re: your message", "Question about my account",
            "Issue with the service"]  # fmt: skip
_P_CUE = {"urgent": (0.55, 0.07), "routine": (0.40, 0.05)}  # (P(own cue), P(the other class's cue))


def _uniform(index: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """Uniform [0, 1) draws from a splitmix64 hash of (seed, stream, row index): one per row, any order."""
    with np.errstate(over="ignore"):
        x = index.astype(np.uint64) + np.uint64((seed * 1_000_003 + stream * 7919 + 1) & 0xFFFFFFFF) * np.uint64(
            0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def urgency_columns(index: np.ndarray, priority: np.ndarray, channel: np.ndarray, tier: np.ndarray,
                    seed: int) -> list[pa.Array]:  # fmt: skip
    """``[subject, true_urgency]`` for rows with global indices ``index`` (priority 1..4, channel, tier)."""
    p = _P_URGENT_BY_PRIORITY[priority - 1] + 0.10 * (channel == "phone") + 0.10 * (tier == "enterprise")
    urgent = _uniform(index, seed, 1) < np.clip(p, 0.0, 0.95)
    u = _uniform(index, seed, 2)
    own = np.where(urgent, _P_CUE["urgent"][0], _P_CUE["routine"][0])
    other = np.where(urgent, _P_CUE["urgent"][1], _P_CUE["routine"][1])
    urgent_cue = np.where(urgent, u < own, (u >= own) & (u < own + other))
    routine_cue = np.where(urgent, (u >= own) & (u < own + other), u < own)
    pick = (_uniform(index, seed, 3) * 5).astype(np.int64)
    neutral = np.array(_NEUTRAL, dtype=object)[(_uniform(index, seed, 4) * len(_NEUTRAL)).astype(np.int64)]
    prefix = np.where(urgent_cue, np.array(_URGENT_CUES, dtype=object)[pick],
                      np.where(routine_cue, np.array(_ROUTINE_CUES, dtype=object)[pick], ""))
    subject = pc.utf8_ltrim_whitespace(pc.binary_join_element_wise(pa.array(prefix, pa.string()),
                                                                   pa.array(neutral, pa.string()), " "))
    truth = pa.array(np.array(URGENCY_SPACE, dtype=object)[urgent.astype(np.int64)], pa.string())
    return [subject, truth]
