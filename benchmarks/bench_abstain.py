"""Abstains as evidence in the precision model: the variants tried in issue 8, session 6.

The precision model treats abstaining as uninformative. Its fitted precisions ``a``, vote
rates ``beta`` and class balance imply ``P(LF j abstains | y)``; this script scores the ways
of using it on the problems that take the precision route (youtube, trec and the unipolar
shapes of :mod:`_shapes`, seeds 0-2), next to the default and majority vote:

- ``abstain_evidence``: the shipped option (:func:`labelmodel.dawid_skene.abstain_table`):
  every row scored by the naive-Bayes table, with the population class balance;
- ``unvoted only: abstain_evidence's``: the option's probabilities on rows without votes
  (their population class shares left uncovered), the default's elsewhere;
- ``unvoted: EM pi x abstains``: only rows without votes change, to
  ``pi_y prod_j P(abstain_j | y)`` with EM's balance (the idea as first stated);
- ``unvoted: uniform x abstains``: the same without the class balance;
- ``voted rows only``: abstains as evidence on rows with votes, unvoted rows uniform;
- ``EM with abstains``: the abstain terms inside EM's E-step (the precision M-step as
  shipped: prior, class-evidence floor, better-than-chance);
- ``EM with abstains, pi without``: the same, the class balance from the abstain-free posterior;
- ``EM with abstains, pi uniform`` and ``EM with abstains, pi default's``: the same, the class
  balance held fixed (Snorkel's ``LabelModel`` holds it at uniform unless given): uniform, or the
  default's fitted balance (session 13);
- ``EM, pi uniform`` (session 14): the abstain-free EM as shipped, but with the class balance held
  at uniform (Snorkel's default), and rows scored with it; ``EM, pi uniform, then its balance``:
  the same weights, rows scored with the balance of its posteriors (one E-step, not fixed in EM);
  ``..., unvoted uniform`` (session 15): the same, rows without votes at uniform as the shipped
  ``class_balance_trust=0`` has them;
- ``em_class_balance=uniform`` (session 16): ``EM, pi uniform`` as shipped in ``labelmodel``, an
  option (merged duplicate LFs and SQUAREM make trec 64.43 there);
- ``EM, pi MV's`` (session 15): the balance held at majority vote's class shares on the rows with
  a vote (computed once, so EM cannot inflate it), and rows scored with it;
- ``equal-weight prior``: the Beta prior centred on the same vote weight for every class
  (``expit(logit(pi_v) + lift)``) instead of floored at ``prior_precision``;
- ``default, true balance given`` (shapes and the demo): the default with ``class_balance`` set to the
  training rows' gold class balance: how much of the gap is the balance estimate; ``true balance
  held in EM``: that balance held fixed inside EM too (Snorkel's use of a given balance);
- ``oracle naive Bayes`` (shapes and the demo): the full table, abstains included, counted from the
  training rows' gold labels (add-one smoothing): what abstains can give when their rates are
  known, and what the metric rewards.

With ``--demo DIR`` (a demo source written by ``python -m jobs.demo.data DIR --rows 20000`` in
lakelabel's venv) the demo's tickets, labelled by its 12 LFs as written for snorkel
(:mod:`_snorkel_apply`, needs snorkel), are one more problem: fitted and scored on every row.

Usage::

    python benchmarks/bench_abstain.py [--data DIR] [--demo DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy.special import expit, logit, logsumexp

from _common import REPO_ROOT, expected_accuracy, markdown_table, mean_tie_f1
from _shapes import SHAPES
from bench_quality import _mv_proba, load_task

SEEDS = (0, 1, 2)


def _demo_problem(folder: Path) -> tuple:
    """The demo's tickets labelled by its LFs (snorkel's applier), fitted and scored on every row."""
    import pandas as pd
    from snorkel.labeling import PandasLFApplier

    from _snorkel_apply import snorkel_lfs

    df = pd.read_parquet(folder)
    L = PandasLFApplier(snorkel_lfs()).apply(df, progress_bar=False, fault_tolerant=True).astype(np.int64)
    y = df["true_label_id"].to_numpy().astype(np.int64)
    return (f"demo ({len(df):,} rows)", L, y, L, (lambda P: 100 * expected_accuracy(P, y)), 4)


def _problems(data: Path, demo: Path | None = None) -> list[tuple[str, np.ndarray, np.ndarray | None, np.ndarray, Callable[[np.ndarray], float], int]]:
    from labelmodel import stats_from_matrix
    from labelmodel.confusion import multi_class_vote_share

    out = [_demo_problem(demo)] if demo is not None else []
    for name in ("youtube", "trec"):
        t = load_task(data / name)
        out.append((name, t.L_train, None, t.L_test, (lambda y: lambda P: 100 * expected_accuracy(P, y))(t.y_test),
                    t.cardinality))
    for name, (gen, metric) in SHAPES.items():
        for seed in SEEDS:
            Ltr, ytr, Lte, yte, k = gen(seed)
            if multi_class_vote_share(stats_from_matrix(Ltr, k)) >= 0.5:
                break  # crowd shapes take the confusion route, which none of this touches
            score = ((lambda y, k: lambda P: 100 * mean_tie_f1(P, y, k))(yte, k) if metric == "f1"
                     else (lambda y: lambda P: 100 * expected_accuracy(P, y))(yte))
            out.append((f"{name}#{seed}", Ltr, ytr, Lte, score, k))
    return out


def _set_unvoted(P: np.ndarray, L: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
    P = P.copy()
    P[(L == -1).all(axis=1)] = np.exp(log_prior - logsumexp(log_prior))
    return P


def _prediction_variants(lm, L: np.ndarray) -> dict[str, np.ndarray]:
    from labelmodel._votes import table_proba

    p = lm.params_
    lC = np.log(np.clip(p.confusion(), 1e-12, None))  # the table implied with EM's balance
    lA = lC[:, 0, :].sum(axis=0)
    default = lm.predict_proba(L)
    k = lm.cardinality
    return {
        "unvoted: EM pi x abstains": _set_unvoted(default, L, p.train_log_prior + lA),
        "unvoted: uniform x abstains": _set_unvoted(default, L, lA),
        "voted rows only": _set_unvoted(table_proba(L, p.train_log_prior, lC), L, np.zeros(k)),
    }


def _em_with_abstains(L: np.ndarray, k: int, pi_from_abstain_free: bool, cfg,
                      pi_fixed: np.ndarray | None = None, abstains: bool = True,
                      then_its_balance: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """EM whose E-step scores rows with the implied table (abstains included; without ``abstains``
    with the shipped abstain-free weights); the M-step is the shipped precision M-step, with the class
    balance ``pi_fixed`` when given. Returns the fitted model's predict_proba (``then_its_balance``:
    abstain-free weights with the balance of the final posteriors)."""
    from labelmodel import stats_from_matrix
    from labelmodel._params import FittedParams
    from labelmodel._votes import bump_proba, table_proba
    from labelmodel.dawid_skene import chance_floor, prior_precision_of

    st = stats_from_matrix(L, k)
    P, cnt = st.patterns.astype(np.int64), st.counts.astype(np.float64)
    n, m = cnt.sum(), P.shape[1]
    onehot = [(P[:, j][:, None] == np.arange(k)[None, :]) for j in range(m)]  # [p, k] per LF
    beta = np.stack([cnt @ oh for oh in onehot]) / n  # [m, k]
    voted = beta > 0
    s = cfg.prior_strength * n
    lift = logit(cfg.prior_precision) - logit(1.0 / k)
    class_tot = (beta * n).sum(axis=0)

    def m_step(post: np.ndarray, post_pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pi = (cnt @ post_pi + cfg.class_smoothing) / (n + k * cfg.class_smoothing) if pi_fixed is None else pi_fixed
        A = np.stack([(cnt[:, None] * post * oh).sum(axis=0) for oh in onehot])
        a0 = np.broadcast_to(prior_precision_of(pi, cfg.prior_precision), (m, k))
        a = np.where(voted, (A + s * a0) / (beta * n + s), a0)
        w = logit(np.clip(a, 1e-6, 1 - 1e-6)) - logit(pi)[None, :]
        mean_w = (beta * n * w).sum(axis=0) / np.where(class_tot > 0, class_tot, 1.0)
        w = w + np.where(class_tot > 0, np.maximum(0.0, cfg.class_evidence_floor * lift - mean_w), 0.0)
        w = np.maximum(w, chance_floor(np.log(pi), np.arange(k))[None, :])
        return np.clip(expit(w + logit(pi)[None, :]), 1e-6, 1 - 1e-6), pi

    def params(a: np.ndarray, pi: np.ndarray) -> FittedParams:
        return FittedParams(kind="bump", log_prior=np.log(pi), precision=a, vote_rate=beta,
                            weights=logit(a) - logit(pi)[None, :])

    def table(a: np.ndarray, pi: np.ndarray) -> np.ndarray:
        return np.log(np.clip(params(a, pi).confusion(), 1e-12, None))

    a, pi = m_step(_mv_proba(P, k), _mv_proba(P, k))
    for _ in range(cfg.max_iter):
        post = (table_proba(P, np.log(pi), table(a, pi)) if abstains
                else bump_proba(P, np.log(pi), params(a, pi).weights))
        post_pi = bump_proba(P, np.log(pi), params(a, pi).weights) if pi_from_abstain_free else post
        a2, pi2 = m_step(post, post_pi)
        done = max(np.abs(a2 - a).max(), np.abs(pi2 - pi).max()) < cfg.tol
        a, pi = a2, pi2
        if done:
            break
    if not abstains:
        w = params(a, pi).weights
        lp = np.log(pi)
        if then_its_balance:
            lp = np.log(np.clip(cnt @ bump_proba(P, lp, w), 1e-12, None) / n)
        return lambda Lt: bump_proba(Lt, lp, w)
    return lambda Lt: table_proba(Lt, np.log(pi), table(a, pi))


def _mv_balance(L: np.ndarray, k: int) -> np.ndarray:
    """The class balance of majority vote's soft labels over the rows with a vote (ties split)."""
    covered = (L != -1).any(axis=1)
    pi = _mv_proba(L[covered], k).mean(axis=0)
    return np.clip(pi, 1e-6, None) / np.clip(pi, 1e-6, None).sum()


def _oracle(Ltr: np.ndarray, ytr: np.ndarray, L: np.ndarray, k: int) -> np.ndarray:
    from labelmodel._votes import table_proba

    m = Ltr.shape[1]
    T = np.ones((m, k + 1, k))
    for j in range(m):
        np.add.at(T[j], (Ltr[:, j] + 1, ytr), 1.0)
    T /= T.sum(axis=1, keepdims=True)
    pi = np.bincount(ytr, minlength=k) / len(ytr)
    return table_proba(L, np.log(pi), np.log(T))


def _equal_weight_prior(pi: np.ndarray, prior_precision: float) -> np.ndarray:
    k = len(pi)
    return expit(logit(np.clip(pi, 1e-6, 1 - 1e-6)) + logit(prior_precision) - logit(1.0 / k))


def run(data: Path, demo: Path | None = None) -> tuple[list[str], dict[str, dict[str, float]], float]:
    import labelmodel.dawid_skene as ds
    from labelmodel import LabelModel, LabelModelConfig

    cfg = LabelModelConfig()
    scores: dict[str, dict[str, list[float]]] = {}
    t0 = time.process_time()
    for name, Ltr, ytr, Lte, score, k in _problems(data, demo):
        row = scores.setdefault(name.split("#")[0], {})

        def add(variant: str, P: np.ndarray) -> None:
            row.setdefault(variant, []).append(score(P))

        lm = LabelModel(cardinality=k).fit(Ltr)
        add("default", lm.predict_proba(Lte))
        abst = LabelModel(cardinality=k, abstain_evidence=True).fit(Ltr).predict_proba(Lte)
        add("abstain_evidence", abst)
        unvoted = (Lte == -1).all(axis=1)
        add("unvoted only: abstain_evidence's", np.where(unvoted[:, None], abst, lm.predict_proba(Lte)))
        for variant, P in _prediction_variants(lm, Lte).items():
            add(variant, P)
        add("EM with abstains", _em_with_abstains(Ltr, k, False, cfg)(Lte))
        add("EM with abstains, pi without", _em_with_abstains(Ltr, k, True, cfg)(Lte))
        add("EM with abstains, pi uniform", _em_with_abstains(Ltr, k, False, cfg, np.full(k, 1.0 / k))(Lte))
        pi_default = np.exp(lm.params_.train_log_prior - logsumexp(lm.params_.train_log_prior))
        add("EM with abstains, pi default's", _em_with_abstains(Ltr, k, False, cfg, pi_default)(Lte))
        uniform = np.full(k, 1.0 / k)
        add("EM, pi uniform", _em_with_abstains(Ltr, k, False, cfg, uniform, abstains=False)(Lte))
        its = _em_with_abstains(Ltr, k, False, cfg, uniform, abstains=False, then_its_balance=True)(Lte)
        add("EM, pi uniform, then its balance", its)
        add("EM, pi uniform, then its balance, unvoted uniform",
            np.where((Lte == -1).all(axis=1)[:, None], 1.0 / k, its))
        add("EM, pi MV's", _em_with_abstains(Ltr, k, False, cfg, _mv_balance(Ltr, k), abstains=False)(Lte))
        add("em_class_balance=uniform", LabelModel(cardinality=k, em_class_balance="uniform").fit(Ltr).predict_proba(Lte))
        shipped = ds.prior_precision_of
        ds.prior_precision_of = _equal_weight_prior
        try:
            add("equal-weight prior", LabelModel(cardinality=k).fit(Ltr).predict_proba(Lte))
        finally:
            ds.prior_precision_of = shipped
        add("MV", _mv_proba(Lte, k))
        if ytr is not None:
            truth = np.bincount(ytr, minlength=k) / len(ytr)
            add("default, true balance given", LabelModel(cardinality=k).fit(Ltr, class_balance=truth).predict_proba(Lte))
            add("true balance held in EM", _em_with_abstains(Ltr, k, False, cfg, truth, abstains=False)(Lte))
            add("oracle naive Bayes", _oracle(Ltr, ytr, Lte, k))
        print(f"[abstain] {name} done, {time.process_time() - t0:.0f} s CPU", file=sys.stderr, flush=True)
    variants = list(scores[next(n for n in scores if n not in ("youtube", "trec"))])
    means = {task: {v: float(np.mean(s)) for v, s in row.items()} for task, row in scores.items()}
    return variants, means, time.process_time() - t0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "wrench",
                   help="folder holding the WRENCH youtube and trec task folders")
    p.add_argument("--demo", type=Path, help="a demo source folder (python -m jobs.demo.data DIR --rows N)")
    args = p.parse_args(argv)
    if not all((args.data / t / "train.json").is_file() for t in ("youtube", "trec")):
        print(f"error: {args.data} has no youtube/ and trec/ task folders; pass --data pointing at "
              "../shared/data/wrench", file=sys.stderr)
        return 2
    variants, means, cpu = run(args.data, args.demo)
    rows = [[task] + [f"{means[task][v]:.2f}" if v in means[task] else "–" for v in variants] for task in means]
    print(markdown_table(["task / shape (mean of seeds 0-2)"] + variants, rows))
    print(f"\n{cpu:.0f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
