"""Checks of the gold labels, dev set and class balance a label model is given.

Each error names the argument, the bad value and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .stats import ABSTAIN, SufficientStats, check_label_matrix

__all__ = ["BALANCE_SUM_TOLERANCE", "check_class_balance", "check_gold", "dev_inputs"]

# How far from 1 a class balance may sum: proportions rounded to two decimals ([0.33, 0.33, 0.33],
# which Snorkel accepts) are renormalized; [0.5, 0.4] is a mistake.
BALANCE_SUM_TOLERANCE = 0.01 + 1e-9


def check_gold(Y: Any, what: str, k: int, *, allow_unknown: bool = False) -> np.ndarray:
    """Gold labels as int64 ``[n]`` in ``0..k-1`` (``-1`` allowed with ``allow_unknown``)."""
    arr = np.asarray(Y)
    if arr.ndim == 2 and arr.shape[1] == 1:  # Snorkel accepts [n, 1] gold arrays
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        try:
            integral = bool(np.all(np.equal(np.mod(arr, 1), 0)))
        except TypeError:
            integral = False
        if not integral:
            raise ValueError(f"{what} must hold integer class ids; got dtype {arr.dtype} with non-integers")
    arr = arr.astype(np.int64)
    lo = ABSTAIN if allow_unknown else 0
    if arr.size and (arr.min() < lo or arr.max() >= k):
        bad = int(arr.min()) if arr.min() < lo else int(arr.max())
        hint = (
            "-1 marks an unknown gold label" if allow_unknown
            else "drop the rows whose gold label is unknown (and their L_dev rows)"
        )
        raise ValueError(
            f"{what} holds {bad}, outside the label space 0..{k - 1} "
            f"(cardinality={k}); pass class ids 0..{k - 1}: {hint}"
        )
    return arr


def dev_inputs(
    stats: SufficientStats, Y_dev: Any, L_dev: Any, class_balance: Any, class_smoothing: float
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    """The class balance set by ``class_balance`` or ``Y_dev`` (None when neither is given)
    and the checked dev set ``(L_dev, Y_dev)`` (None without ``L_dev``).

    ``Y_dev`` sets the balance to ``(count_c + a) / (n_dev + k * a)`` with
    ``a = class_smoothing``; with ``a == 0`` (Snorkel's raw frequencies) a class missing
    from ``Y_dev`` is an error.
    """
    k = stats.cardinality
    balance = None
    dev = None
    if L_dev is not None and Y_dev is None:
        raise ValueError("L_dev was given without Y_dev; pass both to select a model on dev labels")
    if Y_dev is not None:
        Y = check_gold(Y_dev, "Y_dev", k)
        if Y.size == 0:
            raise ValueError("Y_dev is empty; pass gold labels or leave Y_dev=None")
        a = class_smoothing
        counts = np.bincount(Y, minlength=k)
        if a == 0 and np.any(counts == 0):
            raise ValueError(
                f"Y_dev has no row of class(es) {np.flatnonzero(counts == 0).tolist()}, so with "
                "class_smoothing=0 their class balance would be 0 (impossible classes); add dev "
                "labels of every class, pass class_balance=..., or set class_smoothing > 0"
            )
        balance = (counts + a) / (len(Y) + k * a)
        if L_dev is not None:
            Ld = np.asarray(L_dev)
            if Ld.ndim != 2:
                raise ValueError(f"L_dev must be a 2-D [n_dev, n_lfs] matrix of votes, got shape {Ld.shape}")
            if Ld.shape[1] != stats.n_lfs:
                names = ", ".join(stats.lf_names[:8]) + (", ..." if stats.n_lfs > 8 else "")
                raise ValueError(
                    f"L_dev has {Ld.shape[1]} LF columns but L_train has {stats.n_lfs} ({names}); "
                    "pass L_dev with the same LFs, in the same order, as L_train"
                )
            try:
                Ld = check_label_matrix(Ld, k)
            except ValueError as err:
                raise ValueError(f"L_dev: {err}") from err
            if len(Ld) != len(Y):
                raise ValueError(
                    f"L_dev has {len(Ld)} rows but Y_dev has {len(Y)} labels; pass one gold label per L_dev row"
                )
            dev = (Ld, Y)
    if class_balance is not None:
        balance = check_class_balance(class_balance, k)
    return balance, dev


def check_class_balance(class_balance: Any, k: int) -> np.ndarray:
    """``class_balance`` as a float64 ``[k]`` array of positive proportions summing to 1."""
    try:
        cb = np.asarray(class_balance, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"class_balance must be {k} numbers, got {class_balance!r}") from err
    if cb.ndim != 1:
        raise ValueError(
            f"class_balance must be a flat list of {k} proportions, got an array of shape {cb.shape}; "
            "pass one proportion per class, e.g. [0.7, 0.3]"
        )
    if cb.shape != (k,):
        raise ValueError(
            f"class_balance has {cb.shape[0]} entries {cb.tolist()}, but cardinality is {k}; "
            "pass one proportion per class"
        )
    if np.any(~np.isfinite(cb)) or np.any(cb <= 0):
        bad = np.flatnonzero(~np.isfinite(cb) | (cb <= 0)).tolist()
        raise ValueError(
            f"class_balance is {cb.tolist()}: class(es) {bad} are not positive, which would make "
            "them impossible; give every class a proportion > 0"
        )
    if abs(cb.sum() - 1.0) > BALANCE_SUM_TOLERANCE:
        raise ValueError(
            f"class_balance {cb.tolist()} sums to {cb.sum():.6g}, not 1; pass proportions, "
            "e.g. np.asarray(counts) / np.sum(counts)"
        )
    return cb / cb.sum()  # rounded proportions ([0.33, 0.33, 0.33]) are renormalized
