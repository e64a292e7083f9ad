"""Incremental apply benchmark: a full apply, one LF of twelve changed, 1% new rows.

One command (from the repository root, with the project's ``.venv``)::

    .venv/bin/python benchmarks/bench_incremental.py --sizes 100000 1000000 10000000

For each size, a fresh Spark application (``local[*]``, in a subprocess of this interpreter):

1. writes ``n`` demo tickets (:mod:`jobs.demo.data`) as a Delta table in 10 appends (the source
   format whose history tells the changed rows; ``--parquet`` uses a Parquet folder instead, where
   stored row hashes do);
2. ``cold``: a full apply of the demo's 12 LFs (JIT warm-up, worker imports; not compared);
3. ``full``: the same full apply again (``force=True``): the baseline;
4. ``one LF changed``: ``kw_cancel`` gains a keyword; incremental apply (only it runs);
5. ``1% new rows``: ``n/100`` new tickets appended to the source; incremental apply (all 12 LFs on
   the new rows only, the rest of the votes kept).

Each step is timed in wall seconds and CPU seconds of the whole process tree (driver, JVM, Python
workers), which a busy machine disturbs less; the ratio to ``full`` is reported for both, with
the load average. Results go to ``--out`` (default ``benchmarks/out/incremental.json``) and a
markdown table on stdout. Not a lakelabel module: run it as a script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import REPO_ROOT, format_machine_info, machine_info, markdown_table  # noqa: E402
from bench_pipeline import tree_cpu_seconds  # noqa: E402

SEED = 0


def write_source(path: str, start: int, stop: int, *, parquet: bool, appends: int = 10) -> None:
    """Demo rows ``start <= i < stop`` into the source, in ``appends`` commits (or files)."""
    from deltalake import write_deltalake

    from jobs.demo.data import _generate_range

    step = max(1, -(-(stop - start) // appends))
    for a in range(start, stop, step):
        table = _generate_range(a, min(stop, a + step), SEED)
        if parquet:
            import pyarrow.parquet as pq

            Path(path).mkdir(parents=True, exist_ok=True)
            pq.write_table(table, f"{path}/part-{a:010d}.parquet")
        else:
            write_deltalake(path, table, mode="append")


def worker(lakehouse: str, rows: int, parquet: bool, out: str) -> None:
    """Run in the project venv: the four applies in one Spark application, timed."""
    from jobs import apply_lfs
    from jobs.demo import demo_config
    from jobs.runtime.session import get_spark
    from lf_library import keyword_lf

    if os.environ.get("LAKELABEL_BENCH_LOG"):  # --log: the jobs' INFO lines, timestamped (the phase profile)
        from jobs.runtime.command import setup_logging

        setup_logging(verbose=False, quiet=False)
    cfg = demo_config(lakehouse, rows, SEED, overrides=[
        "mlflow.enabled=false", f"source.format={'parquet' if parquet else 'delta'}"])
    source = cfg.source.path
    write_source(source, 0, rows, parquet=parquet)
    spark = get_spark("lakelabel-bench-incremental", master=cfg.spark.master, conf=cfg.spark.conf)
    registry = apply_lfs.build_registry(cfg)
    changed = registry.select(exclude=["kw_cancel"])
    changed.register(keyword_lf("kw_cancel", ["cancel", "cancelling", "cancelled", "canceled"], "billing"))
    me = os.getpid()
    steps: list[dict[str, Any]] = []

    def step(name: str, reg: Any, force: bool = False) -> None:
        load = os.getloadavg()[0]
        cpu0, wall0 = tree_cpu_seconds(me), time.perf_counter()
        applied = apply_lfs.run(spark, cfg, run_id=f"bench-{len(steps)}", registry=reg, force=force)
        steps.append({
            "step": name, "wall_s": time.perf_counter() - wall0, "cpu_s": tree_cpu_seconds(me) - cpu0,
            "load_1min": round(load, 2), "rows": applied.n_rows, "applied_lfs": len(applied.applied_lfs),
            "reused_lfs": len(applied.reused_lfs), "applied_rows": applied.applied_rows,
            "detect_s": applied.row_changes.get("detect_seconds"),
            "votes": sum(lf.votes for lf in applied.lfs),
        })  # fmt: skip
        print(json.dumps(steps[-1]), flush=True)

    step("cold full apply", registry, force=True)
    step("full apply", registry, force=True)
    step("one LF of 12 changed", changed)
    write_source(source, rows, rows + rows // 100, parquet=parquet, appends=1)
    step("1% new rows", changed)
    Path(out).write_text(json.dumps({"rows": rows, "cores": spark.sparkContext.defaultParallelism,
                                     "source": "parquet" if parquet else "delta", "steps": steps}))
    spark.stop()


def report(info: dict[str, Any], results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        base = next(s for s in r["steps"] if s["step"] == "full apply")
        for s in r["steps"]:
            rows.append([f"{r['rows']:,}", r["source"], s["step"], s["applied_lfs"], f"{s['applied_rows']:,}",
                         f"{s['wall_s']:.1f}", f"{s['cpu_s']:.1f}",
                         f"{s['wall_s'] / base['wall_s']:.0%}", f"{s['cpu_s'] / base['cpu_s']:.0%}", s["load_1min"]])
    table = markdown_table(["rows", "source", "step", "LFs run", "rows run", "wall s", "CPU s", "wall / full",
                            "CPU / full", "load (1 min)"], rows)
    return format_machine_info(info) + "\n\n" + table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--parquet", action="store_true", help="a Parquet source (row hashes) instead of Delta")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "out" / "incremental.json"))
    p.add_argument("--timeout", type=float, default=7200)
    p.add_argument("--keep", action="store_true", help="keep the work folders")
    p.add_argument("--log", action="store_true", help="print the jobs' INFO log lines (when each phase starts)")
    p.add_argument("--worker", nargs=4, metavar=("LAKEHOUSE", "ROWS", "PARQUET", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        lakehouse, rows, parquet, out = args.worker
        worker(lakehouse, int(rows), parquet == "1", out)
        return 0
    info = machine_info()
    results = []
    for n in args.sizes:
        work = Path(tempfile.mkdtemp(prefix=f"bench-incr-{n}-"))
        out = work / "result.json"
        cmd = [sys.executable, __file__, "--worker", str(work / "lake"), str(n), "1" if args.parquet else "0", str(out)]
        env = {**os.environ, **({"LAKELABEL_BENCH_LOG": "1"} if args.log else {})}
        rc = subprocess.run(cmd, cwd=REPO_ROOT, timeout=args.timeout, env=env).returncode
        if rc != 0:
            print(f"worker for {n} rows failed with exit code {rc} (work folder {work})", file=sys.stderr)
            return 1
        results.append(json.loads(out.read_text()))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": info, "results": results}, indent=2))
    print(report(info, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
