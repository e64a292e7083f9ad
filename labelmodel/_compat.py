"""Snorkel 0.10 ``LabelModel.fit(**TrainConfig)`` options: checked as Snorkel checks them.

The options tune Snorkel's SGD, which this package does not use, so their values are
ignored (with a warning); but a value Snorkel would reject is rejected here too, with
Snorkel's message, so code that relied on the error keeps getting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

SNORKEL_TRAIN_KWARGS = frozenset(
    {"n_epochs", "lr", "l2", "optimizer", "optimizer_config", "lr_scheduler",
     "lr_scheduler_config", "prec_init", "seed", "log_freq", "mu_eps"}
)
_OPTIMIZERS = ("sgd", "adam", "adamax")
_LR_SCHEDULERS = ("constant", "linear", "exponential", "step")


def check_snorkel_train_kwargs(kwargs: Mapping[str, Any], n_lfs: int | None) -> None:
    """Raise where Snorkel 0.10's ``fit`` would raise on these options (same messages).

    Parameters
    ----------
    kwargs : mapping
        The Snorkel ``TrainConfig`` options passed to ``fit``.
    n_lfs : int, optional
        Number of LF columns of ``L_train`` (``prec_init`` must have one entry per LF;
        not checked when None).
    """
    unknown = sorted(set(kwargs) - SNORKEL_TRAIN_KWARGS)
    if unknown:
        raise TypeError(
            f"unexpected fit() argument(s) {unknown}; label model settings go to the "
            f"constructor (LabelModelConfig fields)"
        )
    opt = kwargs.get("optimizer")
    if opt is not None and opt not in _OPTIMIZERS:
        raise ValueError(f"Unrecognized optimizer option '{opt}'; use one of {', '.join(_OPTIMIZERS)}")
    sched = kwargs.get("lr_scheduler")
    if sched is not None and sched not in _LR_SCHEDULERS:
        raise ValueError(
            f"Unrecognized lr scheduler option '{sched}'; use one of {', '.join(_LR_SCHEDULERS)}"
        )
    cfg = kwargs.get("lr_scheduler_config")
    if isinstance(cfg, Mapping) and cfg.get("warmup_steps"):
        if cfg["warmup_steps"] < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {cfg['warmup_steps']!r}")
        if cfg.get("warmup_unit", "batches") != "epochs":
            raise ValueError(
                "LabelModel does not support any warmup_unit other than 'epochs' "
                f"(got {cfg.get('warmup_unit', 'batches')!r})"
            )
    if "prec_init" in kwargs:
        prec = kwargs["prec_init"]
        if not isinstance(prec, (int, float, list, np.ndarray)) and not hasattr(prec, "shape"):  # torch tensors
            raise TypeError(f"prec_init is of type {type(prec)} which is not supported currently.")
        if n_lfs is not None and not isinstance(prec, (int, float)):
            shape = tuple(getattr(prec, "shape", (len(prec),)))
            if not shape or shape[0] != n_lfs:
                raise ValueError(f"prec_init must have shape {n_lfs}. Got shape {shape}: pass one precision per LF")
