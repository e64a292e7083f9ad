"""Label-model speed and memory on seeded synthetic label matrices, next to snorkel 0.10.

Sizes (rows x LFs x classes): 1Mx10x2, 1Mx20x3, 10Mx50x10, and 300kx15x1461 (snorkel
#1537's shape: many classes, few LFs); 100kx2000x1000 (issue 8's scale shape, each LF voting
100 of the classes: :func:`generate_subset_matrix`) on request. Matrices come from a seeded generative model (a
Dirichlet class prior; per LF a coverage in [0.1, 0.6] and an accuracy in [0.55, 0.95],
wrong votes uniform over the other classes) and are held as int8 (int16 above 127 classes).

Each (size, method) runs in a fresh subprocess under an address-space limit
(``--mem-limit-gib``, default 16), so one method's peak memory cannot hide another's and
a run that would exhaust the machine fails with MemoryError instead; ``--fresh-runs N``
starts N such subprocesses and reports the median, min and max of each phase's *first*
call (what a notebook user meets). Phases timed:

- ours: ``import labelmodel``; ``LabelModel(k).fit(L)`` on the dense matrix (the notebook
  path: statistics with the model's own pattern cap, then the fit); ``stats_from_matrix``
  with ``--max-patterns`` (as the aggregate job), ``LabelModel.fit_from_stats`` ("fit
  from statistics"); and ``predict_proba`` over every row;
- snorkel: ``import snorkel.labeling.model``; ``LabelModel.fit(L, seed, progress_bar=False)``
  with default hyperparameters, and ``predict_proba`` over every row.

Peak RSS is measured per phase (Linux: the VmHWM counter reset through
``/proc/self/clear_refs`` before each phase). Accuracy against the generating labels is
reported as a sanity check (exact expectation under random tie breaking).

Usage::

    python benchmarks/bench_speed.py [--sizes 1Mx10x2 1Mx20x3 10Mx50x10 300kx15x1461]
        [--methods ours snorkel] [--fresh-runs 3] [--repeat 3] [--mem-limit-gib 16] [--out speed.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    expected_accuracy,
    format_machine_info,
    machine_info,
    markdown_table,
    ours_available,
    snorkel_available,
)

SIZES = {
    "1Mx10x2": (1_000_000, 10, 2),
    "1Mx20x3": (1_000_000, 20, 3),
    "10Mx50x10": (10_000_000, 50, 10),
    "300kx15x1461": (300_000, 15, 1461),
    "100kx2000x1000": (100_000, 2000, 1000),
}
# sizes whose LFs each vote only a subset of the classes (issue 8's scale shape)
CLASSES_PER_LF = {"100kx2000x1000": 100}
DEFAULT_SIZES = ("1Mx10x2", "1Mx20x3", "10Mx50x10", "300kx15x1461")
METHODS = ("ours", "snorkel")
GEN_CHUNK = 250_000  # rows per generation chunk; part of the seed contract, do not change
GiB = 2**30

# ---------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------


def generate_label_matrix(n: int, m: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Seeded ``L: [n, m]`` int8 in {-1, 0..k-1} and gold ``y: [n]`` from a generative model.

    Generated in chunks of ``GEN_CHUNK`` rows, each from its own ``default_rng([seed, i])``,
    so memory stays at a few hundred MB above ``L`` itself.
    """
    rng = np.random.default_rng([seed, 2**31 - 1])
    prior = rng.dirichlet(np.full(k, 5.0))
    coverage = rng.uniform(0.1, 0.6, m)
    accuracy = rng.uniform(0.55, 0.95, m)
    dt = np.int8 if k <= 127 else np.int16  # int8 for every size up to 127 classes
    L = np.empty((n, m), dtype=dt)
    y = np.empty(n, dtype=dt)
    for i, start in enumerate(range(0, n, GEN_CHUNK)):
        b = min(GEN_CHUNK, n - start)
        r = np.random.default_rng([seed, i])
        yc = r.choice(k, size=b, p=prior).astype(dt)
        votes = r.random((b, m)) < coverage
        correct = r.random((b, m)) < accuracy
        wrong = (yc[:, None] + r.integers(1, k, (b, m), dtype=dt)) % k
        L[start:start + b] = np.where(votes, np.where(correct, yc[:, None], wrong), -1)
        y[start:start + b] = yc
    params = {"prior": prior.round(4).tolist(), "coverage": coverage.round(3).tolist(),
              "accuracy": accuracy.round(3).tolist()}
    return L, y, params


def generate_subset_matrix(n: int, m: int, k: int, per_lf: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Seeded ``L: [n, m]`` int16 where each LF knows ``per_lf`` of the ``k`` classes.

    LF ``j`` has a random set ``S_j`` of ``per_lf`` classes, a coverage ``c_j`` in
    [0.05, 0.3] and an accuracy ``a_j`` in [0.55, 0.95]. On a row whose class is in
    ``S_j`` it votes with probability ``c_j``: the class with probability ``a_j``, else
    another class of ``S_j``. On other rows it fires falsely with probability 0.002, for a
    random class of ``S_j``. Classes follow a Dirichlet(5) prior. About 38 votes per row.
    """
    rng = np.random.default_rng([seed, 2**31 - 2])
    prior = rng.dirichlet(np.full(k, 5.0))
    sets = np.stack([rng.choice(k, per_lf, replace=False) for _ in range(m)])  # [m, per_lf]
    coverage = rng.uniform(0.05, 0.3, m)
    accuracy = rng.uniform(0.55, 0.95, m)
    member = np.full((m, k), -1, dtype=np.int32)  # position of class c in S_j, or -1
    member[np.arange(m)[:, None], sets] = np.arange(per_lf)[None, :]
    L = np.full((n, m), -1, dtype=np.int16)
    y = np.empty(n, dtype=np.int16)
    for i, start in enumerate(range(0, n, GEN_CHUNK // 10)):
        b = min(GEN_CHUNK // 10, n - start)
        r = np.random.default_rng([seed, i, 7])
        yc = r.choice(k, size=b, p=prior)
        pos = member[:, yc].T  # [b, m]
        knows = pos >= 0
        fire = np.where(knows, r.random((b, m)) < coverage, r.random((b, m)) < 0.002)
        right = knows & (r.random((b, m)) < accuracy)
        other = (np.where(knows, pos, 0) + r.integers(1, per_lf, (b, m))) % per_lf
        vote = np.where(right, yc[:, None], sets[np.arange(m)[None, :], other])
        L[start:start + b] = np.where(fire, vote, -1)
        y[start:start + b] = yc
    params = {"classes_per_lf": per_lf, "coverage": [float(coverage.min()), float(coverage.max())],
              "accuracy": [float(accuracy.min()), float(accuracy.max())]}
    return L, y, params


def generate_for(size: str, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """The matrix of a named size."""
    n, m, k = SIZES[size]
    if size in CLASSES_PER_LF:
        return generate_subset_matrix(n, m, k, CLASSES_PER_LF[size], seed)
    return generate_label_matrix(n, m, k, seed)


# ---------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    """Reset the process's peak-RSS counter (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def peak_mib() -> float:
    hwm = _status_kib("VmHWM")
    if hwm:
        return hwm / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def snorkel_bytes(n: int, m: int, k: int) -> int:
    """snorkel 0.10's peak in fit: a dense float64 one-hot ``[n, m*k]`` plus int64 temporaries."""
    return n * m * k * 8 + n * m * 8 + n * m * 2


STATS_BYTES_PER_CELL = 40


def stats_from_matrix_bytes(n: int, m: int, k: int) -> int:
    """Memory budget of ``labelmodel.stats_from_matrix`` on a whole ``[n, m]`` matrix.

    It copies L to int64 (8 B/cell) and builds a sparse one-hot from int64 coordinates of
    every vote; its measured peak is ~25 B/cell at 1M x 20 x 3 (coverage ~0.35), so
    40 B/cell is budgeted.
    """
    return STATS_BYTES_PER_CELL * n * m


# ---------------------------------------------------------------------------------------
# Worker (one method on one size, in its own process)
# ---------------------------------------------------------------------------------------


class _Phases:
    """Times phases: ``repeat`` calls each, reporting the fastest (the least disturbed by
    other load on the machine) and the peak RSS over all calls."""

    def __init__(self, repeat: int = 1) -> None:
        self.repeat = repeat
        self.out: dict[str, dict[str, Any]] = {}

    def run(self, name: str, fn: Any, *args: Any, repeat: int | None = None, **kw: Any) -> Any:
        times, cpus, peaks = [], [], []
        base = rss_mib()
        for _ in range(repeat or self.repeat):
            value = None  # drop the previous result before the next call
            reset_peak()
            c0, t0 = time.process_time(), time.perf_counter()
            value = fn(*args, **kw)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)  # user + system, all threads
            peaks.append(peak_mib())
        self.out[name] = {"seconds": min(times), "all_seconds": times, "cpu_seconds": cpus,
                          "peak_rss_mib": max(peaks), "rss_before_mib": base}
        return value


def stats_in_chunks(L: np.ndarray, k: int, chunk_rows: int, max_patterns: int | None = None) -> Any:
    """Sum :class:`SufficientStats` of row chunks: the same counts as one call on all of ``L``.

    Every field is a count over rows, so chunk stats add up; distinct patterns are merged and
    re-counted. Used where ``stats_from_matrix`` on the whole matrix would not fit in memory.
    """
    from labelmodel.stats import SufficientStats, stats_from_matrix

    parts = [stats_from_matrix(L[s:s + chunk_rows], k, max_patterns=max_patterns)
             for s in range(0, L.shape[0], chunk_rows)]
    first = parts[0]
    patterns = counts = None
    if all(p.has_patterns for p in parts):
        P = np.concatenate([p.patterns for p in parts])
        C = np.concatenate([p.counts for p in parts])
        uniq, inv = np.unique(P, axis=0, return_inverse=True)
        merged = np.bincount(inv.ravel(), weights=C, minlength=len(uniq)).astype(np.int64)
        if max_patterns is None or len(uniq) <= max_patterns:
            patterns, counts = uniq, merged
    return SufficientStats(
        n_rows=sum(p.n_rows for p in parts),
        cardinality=first.cardinality,
        lf_names=first.lf_names,
        overlap=sum(p.overlap for p in parts),
        lf_coverage=sum(p.lf_coverage for p in parts),
        lf_overlap=sum(p.lf_overlap for p in parts),
        lf_conflict=sum(p.lf_conflict for p in parts),
        n_covered=sum(p.n_covered for p in parts),
        n_overlapped=sum(p.n_overlapped for p in parts),
        n_conflicted=sum(p.n_conflicted for p in parts),
        patterns=patterns,
        counts=counts,
    )


def predict_in_chunks(model: Any, L: np.ndarray, chunk_rows: int) -> np.ndarray:
    out = np.empty((L.shape[0], model_cardinality(model)), dtype=np.float64)
    for s in range(0, L.shape[0], chunk_rows):
        out[s:s + chunk_rows] = model.predict_proba(L[s:s + chunk_rows])
    return out


def model_cardinality(model: Any) -> int:
    return int(getattr(model, "cardinality", None) or len(model.class_balance_))


def worker(size: str, method: str, seed: int, mem_limit: int, stats_chunk_rows: int | None,
           snorkel_epochs: int | None, max_patterns: int | None, repeat: int = 1) -> dict:
    n, m, k = SIZES[size]
    notes: list[str] = []
    ph = _Phases(repeat)
    L, y, params = ph.run("generate", generate_for, size, seed, repeat=1)
    result: dict[str, Any] = {"size": size, "method": method, "n": n, "m": m, "k": k,
                              "L_mib": L.nbytes / 2**20, "generator": params, "notes": notes}
    if method == "ours":
        ph.run("import", importlib.import_module, "labelmodel", repeat=1)
        from labelmodel import LabelModel
        from labelmodel.stats import stats_from_matrix

        # the notebook path first, in a fresh process: statistics and fit from the dense matrix
        ph.run("fit(L)", lambda: LabelModel(cardinality=k, seed=seed).fit(L))

        chunk = stats_chunk_rows
        if chunk is None and stats_from_matrix_bytes(n, m, k) > mem_limit // 2:
            chunk = 1_000_000
            notes.append(
                f"stats_from_matrix on all {n:,} x {m} cells is budgeted at ~{stats_from_matrix_bytes(n, m, k) / GiB:.0f} "
                f"GiB (int64 copy of L plus int64 vote coordinates), over half the limit; the benchmark "
                f"summed the statistics of {chunk:,}-row chunks instead (exact: every field is a count)"
            )
        if chunk:
            stats = ph.run("stats", stats_in_chunks, L, k, chunk, max_patterns)
        else:
            stats = ph.run("stats", stats_from_matrix, L, k, max_patterns=max_patterns)
        result["n_patterns"] = None if stats.patterns is None else int(len(stats.patterns))
        model = ph.run("fit_from_stats", lambda: LabelModel(cardinality=k, seed=seed).fit_from_stats(stats))
        del stats
        try:
            probs = ph.run("predict_proba", model.predict_proba, L)
        except MemoryError as err:
            notes.append(f"predict_proba on all rows raised MemoryError ({err}); timed in 1M-row chunks")
            probs = ph.run("predict_proba", predict_in_chunks, model, L, 1_000_000)
    elif method == "snorkel":
        ph.run("import", importlib.import_module, "snorkel.labeling.model", repeat=1)
        from snorkel.labeling.model import LabelModel

        kw = {} if snorkel_epochs is None else {"n_epochs": snorkel_epochs}

        def fit() -> Any:
            model = LabelModel(cardinality=k, verbose=False)
            model.fit(L, seed=seed, progress_bar=False, **kw)
            return model

        model = ph.run("fit", fit)
        probs = ph.run("predict_proba", model.predict_proba, L)
    else:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    result["accuracy_vs_generating_y"] = expected_accuracy(probs, y)
    result["phases"] = ph.out
    return result


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------


def _limit_memory(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_isolated(size: str, method: str, args: argparse.Namespace) -> dict:
    limit = int(args.mem_limit_gib * GiB)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, "--sizes", size,
           "--seed", str(args.seed), "--mem-limit-gib", str(args.mem_limit_gib)]
    if args.stats_chunk_rows:
        cmd += ["--stats-chunk-rows", str(args.stats_chunk_rows)]
    if args.snorkel_epochs:
        cmd += ["--snorkel-epochs", str(args.snorkel_epochs)]
    cmd += ["--max-patterns", str(args.max_patterns), "--repeat", str(args.repeat)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_limit_memory(limit),
                          timeout=args.timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit {proc.returncode}"]
        return {"size": size, "method": method, "error": tail[0][:300], "wall_seconds": wall}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall_seconds"] = wall
    return res


def run_fresh(size: str, method: str, args: argparse.Namespace) -> dict:
    """``--fresh-runs`` isolated workers; the first successful result, plus every run's
    first-call seconds per phase under ``"fresh"``."""
    runs = [run_isolated(size, method, args) for _ in range(max(1, args.fresh_runs))]
    ok = [r for r in runs if "phases" in r]
    if not ok:
        return runs[0]
    res = ok[0]
    res["fresh"] = {ph: [r["phases"][ph]["all_seconds"][0] for r in ok] for ph in res["phases"]}
    for ph in res["phases"]:  # the fastest call over every process, with its CPU seconds
        best = min((r["phases"][ph] for r in ok), key=lambda v: v["seconds"])
        i = best["all_seconds"].index(best["seconds"])
        res["phases"][ph] = {**res["phases"][ph], "seconds": best["seconds"],
                             "cpu_of_fastest": (best.get("cpu_seconds") or [None] * (i + 1))[i]}
    res["fresh_errors"] = [r["error"] for r in runs if "error" in r]
    return res


def _fmt_s(v: float | None) -> str:
    return "–" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def _fmt_mib(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _first(r: dict | None, phase: str) -> float | None:
    """Median over fresh processes of the phase's first call."""
    if r is None or phase not in r.get("phases", {}):
        return None
    return statistics.median(r.get("fresh", {}).get(phase) or [r["phases"][phase]["all_seconds"][0]])


def _spread(r: dict, phase: str) -> str:
    runs = r.get("fresh", {}).get(phase) or [r["phases"][phase]["all_seconds"][0]]
    if len(runs) == 1:
        return _fmt_s(runs[0])
    return f"{_fmt_s(statistics.median(runs))} [{_fmt_s(min(runs))}–{_fmt_s(max(runs))}]"


def _fastest(r: dict | None, phase: str) -> float | None:
    if r is None or phase not in r.get("phases", {}):
        return None
    return r["phases"][phase]["seconds"]


def _ratio(num: float | None, den: float | None, target: float | None = None, fmt: str = "{:,.1f}x") -> str:
    if not num or not den:
        return "–"
    v = num / den
    return fmt.format(v) + ("" if target is None else (" PASS" if v >= target else " FAIL"))


def results_tables(results: list[dict]) -> str:
    header = ["size (n x m x k)", "method", "phase", "first call s, median [min–max] over fresh processes",
              "fastest call s (any process)", "CPU s of that call", "peak RSS MiB", "acc vs gen. y %"]
    rows = []
    for r in results:
        if "skipped" in r or "error" in r:
            rows.append([r["size"], r["method"], "skipped" if "skipped" in r else "error",
                         r.get("skipped") or r.get("error"), "–", "–", "–", "–"])
            continue
        first = True
        for phase, ph in r["phases"].items():
            if phase == "generate":
                continue
            acc = f"{100 * r['accuracy_vs_generating_y']:.2f}" if first else ""
            fastest = "" if phase == "import" else _fmt_s(ph["seconds"])
            cpu = "" if phase == "import" else _fmt_s(ph.get("cpu_of_fastest"))
            rows.append([r["size"], r["method"], phase, _spread(r, phase), fastest, cpu,
                         _fmt_mib(ph["peak_rss_mib"]), acc])
            first = False
    text = markdown_table(header, rows)

    by = {(r["size"], r["method"]): r for r in results if "phases" in r}
    trows = []
    for size in dict.fromkeys(r["size"] for r in results):
        ours, sk = by.get((size, "ours")), by.get((size, "snorkel"))
        n = SIZES[size][0]
        pred = _fastest(ours, "predict_proba")
        skpred = _fastest(sk, "predict_proba")
        trows.append([
            size,
            _fmt_s(_first(ours, "fit(L)")), _fmt_s(_first(sk, "fit")),
            _ratio(_first(sk, "fit"), _first(ours, "fit(L)"), 10),
            _fmt_s(_fastest(ours, "fit_from_stats")), _fmt_s(_fastest(sk, "fit")),
            _ratio(_fastest(sk, "fit"), _fastest(ours, "fit_from_stats"), 50, "{:,.0f}x"),
            _fmt_s(pred), _fmt_s(skpred),
            "–" if not (pred and skpred) else ("PASS" if pred <= skpred else "FAIL"),
            "–" if pred is None else f"{pred / (n / 1e5):.3f}",
        ])
    theader = ["size", "ours fit(L) first call s", "snorkel fit first call s",
               "snorkel / ours, first calls (target ≥ 10x)", "ours fit_from_stats s", "snorkel fit s (fastest)",
               "snorkel fit / ours fit_from_stats (target ≥ 50x)", "ours predict_proba s", "snorkel predict_proba s",
               "ours no slower", "ours predict_proba s per 100k rows"]
    return text + "\n\n" + markdown_table(theader, trows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), choices=list(SIZES))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-limit-gib", type=float, default=16.0,
                   help="address-space limit of each method's subprocess (default 16)")
    p.add_argument("--stats-chunk-rows", type=int, default=None,
                   help="compute our stats in row chunks of this size (default: whole matrix "
                        "unless that would not fit under the memory limit)")
    p.add_argument("--snorkel-epochs", type=int, default=None, help="default: snorkel's own (100)")
    p.add_argument("--max-patterns", type=int, default=200_000,
                   help="keep the distinct-pattern table only up to this many patterns, as the "
                        "aggregate job's aggregate.max_patterns (default 200000); 0 keeps all")
    p.add_argument("--repeat", type=int, default=3,
                   help="calls per timed phase; the fastest is reported (default 3)")
    p.add_argument("--fresh-runs", type=int, default=3,
                   help="fresh subprocesses per (size, method); first calls are reported as median [min-max]")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per subprocess")
    p.add_argument("--out", type=Path, help="write all results as JSON here")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    limit = int(args.mem_limit_gib * GiB)
    if args.worker:
        res = worker(args.sizes[0], args.worker, args.seed, limit, args.stats_chunk_rows, args.snorkel_epochs,
                     args.max_patterns or None, args.repeat)
        print(json.dumps(res))
        return 0

    info = machine_info()
    results = []
    for size in args.sizes:
        n, m, k = SIZES[size]
        for method in args.methods:
            if method == "ours" and not ours_available():
                results.append({"size": size, "method": method,
                                "skipped": "labelmodel.LabelModel is not importable"})
            elif method == "snorkel" and not snorkel_available():
                results.append({"size": size, "method": method, "skipped": "snorkel is not installed"})
            elif method == "snorkel" and snorkel_bytes(n, m, k) > limit:
                results.append({"size": size, "method": method, "skipped": (
                    f"needs ~{snorkel_bytes(n, m, k) / GiB:.0f} GiB (dense float64 one-hot "
                    f"{n:,} x {m * k} = {n * m * k * 8 / GiB:.0f} GiB plus int64 temporaries) > "
                    f"{args.mem_limit_gib:g} GiB limit")})
            else:
                results.append(run_fresh(size, method, args))
            r = results[-1]
            status = r.get("skipped") or r.get("error") or ", ".join(
                f"{ph} {v['seconds']:.3f}s" for ph, v in r["phases"].items())
            print(f"[{size}] {method}: {status}", file=sys.stderr, flush=True)

    print("## Label-model speed and memory on synthetic matrices\n")
    print(format_machine_info(info))
    print(f"- each method in its own subprocess under RLIMIT_AS = {args.mem_limit_gib:g} GiB; seed {args.seed}; "
          f"L held as int8 (int16 above 127 classes); {args.fresh_runs} fresh processes per row, "
          f"{args.repeat} calls per phase in each; peak RSS per phase from VmHWM (reset before each call)")
    print(f"- ours: pattern table kept up to {args.max_patterns or 'any number of'} distinct patterns "
          "(as aggregate.max_patterns), overlap moments only above that")
    pats = ", ".join(f"{r['size']}: {r['n_patterns'] if r['n_patterns'] is not None else 'dropped'}"
                     for r in results if r.get("method") == "ours" and "n_patterns" in r)
    if pats:
        print(f"- ours: distinct patterns kept in the stats: {pats}")
    print()
    print(results_tables(results))
    notes = sorted({n for r in results for n in r.get("notes", [])})
    for note in notes:
        print(f"\n- note: {note}")
    if args.out:
        args.out.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
