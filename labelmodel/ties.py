"""Turning class probabilities into hard labels, with documented tie-break policies.

A row is *tied* when more than one class is within ``tol`` of the row's largest
probability (rows where every LF abstained tie whenever the class prior is uniform).
Policies:

``"abstain"``
    Tied rows get ``-1`` (ABSTAIN). Snorkel's default.
``"first"``
    Tied rows get the lowest class index among the tied classes.
``"random"``
    Tied rows get one of the tied classes chosen by a deterministic hash.

    * With ``row_ids`` (what the pipeline passes): a hash of the row's *id*, never its
      position, so the same row gets the same label on every run, on every machine and
      in any row order. The hash is :func:`stable_row_hash` (blake2b of ``str(row_id)``),
      mixed with ``seed``; among the ``t`` tied classes, in increasing class order, the
      one at index ``hash % t`` wins.
    * Without ``row_ids``: exactly Snorkel 0.10's rule, a hash of the row's *position*
      ``i`` in the matrix: index ``int(sha1(str(i)).hexdigest(), 16) % t`` among the tied
      classes (``seed`` is not used). Deterministic, and equal to Snorkel's predictions
      for the same probabilities, but a row's label can change when rows are reordered
      or the matrix is split differently.
``"true-random"``
    Tied rows get a tied class drawn from numpy's global random state (as Snorkel);
    ``np.random.seed`` makes it repeatable, nothing else does.

Rows on which every LF abstained are a separate case handled by
:meth:`labelmodel.LabelModel.predict` (``label_unvoted``), not here.

The pipeline records the policy (and seed) it used in the label lineage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from .stats import ABSTAIN

__all__ = ["TIE_BREAK_POLICIES", "TieBreakPolicy", "stable_row_hash", "probs_to_preds"]

TieBreakPolicy = Literal["abstain", "random", "first", "true-random"]
TIE_BREAK_POLICIES: tuple[str, ...] = ("abstain", "random", "first", "true-random")

_MASK64 = (1 << 64) - 1


def _canonical(row_id: Any) -> str:
    # numpy scalars print like the Python value they hold; .item() makes that explicit
    # (np.int64(7) and 7 must hash alike, as must np.str_("a") and "a").
    if isinstance(row_id, np.generic):
        row_id = row_id.item()
    if isinstance(row_id, bytes):
        return row_id.hex()
    return str(row_id)


def stable_row_hash(row_ids: Iterable[Any] | np.ndarray) -> np.ndarray:
    """Hash row ids to ``uint64`` with an algorithm that never changes.

    ``blake2b(str(row_id).encode("utf-8"), digest_size=8)`` read as a little-endian
    unsigned integer. Identical across processes, machines and Python versions
    (unlike ``hash()``). Integers and their numpy counterparts hash alike; ``bytes``
    hash by their hex string.

    Parameters
    ----------
    row_ids : iterable of int, str or bytes
        One id per row (a list, numpy array, pandas Series or pyarrow Array's
        ``to_pylist()``).

    Returns
    -------
    ndarray of uint64, shape [n]
    """
    if hasattr(row_ids, "to_pylist"):  # pyarrow arrays, without importing pyarrow
        row_ids = row_ids.to_pylist()
    out = [
        int.from_bytes(
            hashlib.blake2b(_canonical(r).encode("utf-8"), digest_size=8).digest(), "little"
        )
        for r in row_ids
    ]
    return np.array(out, dtype=np.uint64)


def _mix_seed(h: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 finalizer of ``h xor seed``: a fixed, well-mixed function of both."""
    x = (h ^ np.uint64(int(seed) & _MASK64)).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def _snorkel_hash(i: int) -> int:
    """Snorkel 0.10's ``snorkel.utils.core._hash``: sha1 of ``str(i)`` as an integer."""
    return int(hashlib.sha1(str(i).encode("utf-8")).hexdigest(), 16)


def check_policy(policy: str) -> str:
    if policy not in TIE_BREAK_POLICIES:
        raise ValueError(
            f"unknown tie_break_policy {policy!r}; use one of {', '.join(TIE_BREAK_POLICIES)}"
        )
    return policy


def probs_to_preds(
    probs: np.ndarray,
    tie_break_policy: str = "abstain",
    row_ids: Sequence[Any] | np.ndarray | None = None,
    *,
    seed: int = 0,
    tol: float = 1e-5,
) -> np.ndarray:
    """Hard labels from class probabilities.

    Parameters
    ----------
    probs : ndarray, shape [n, k]
    tie_break_policy : {"abstain", "random", "first", "true-random"}
        See the module docstring.
    row_ids : sequence, shape [n], optional
        Stable row ids for ``"random"``; without them ``"random"`` hashes row positions
        as Snorkel does.
    seed : int
        Mixed into the row-id hash for ``"random"`` with ``row_ids``.
    tol : float
        Classes within ``tol`` of the row maximum are tied (as Snorkel's ``probs_to_preds``).

    Returns
    -------
    ndarray of int64, shape [n]; ``-1`` where the policy abstains.
    """
    check_policy(tie_break_policy)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be a 2-D [n_rows, n_classes] array, got shape {probs.shape}")
    n = probs.shape[0]
    if row_ids is not None and len(row_ids) != n:
        raise ValueError(f"row_ids has {len(row_ids)} ids for {n} rows; pass one id per row of L")
    preds = probs.argmax(axis=1).astype(np.int64)  # argmax takes the first maximum
    if n == 0:
        return preds
    tied = probs >= probs.max(axis=1, keepdims=True) - tol
    n_tied = tied.sum(axis=1)
    rows = np.flatnonzero(n_tied > 1)
    if rows.size == 0 or tie_break_policy == "first":
        return preds
    if tie_break_policy == "abstain":
        preds[rows] = ABSTAIN
        return preds
    t = n_tied[rows]
    if tie_break_policy == "true-random":
        pick = np.random.randint(0, t)  # numpy's global state, as Snorkel
    elif row_ids is None:
        pick = np.array([_snorkel_hash(int(i)) % int(c) for i, c in zip(rows, t)], dtype=np.int64)
    else:
        ids = row_ids.to_pylist() if hasattr(row_ids, "to_pylist") else row_ids
        ids_tied = [ids[i] for i in rows]  # hash only the tied rows
        h = _mix_seed(stable_row_hash(ids_tied), seed)
        pick = (h % t.astype(np.uint64)).astype(np.int64)
    # position of the pick-th True in each tied row
    cum = np.cumsum(tied[rows], axis=1) - 1
    preds[rows] = np.argmax((cum == pick[:, None]) & tied[rows], axis=1)
    return preds
