"""Pipeline benchmark: LF apply throughput against snorkel 0.10, and the demo end to end.

One command (from the repository root, with the project's ``.venv``)::

    .venv/bin/python benchmarks/bench_pipeline.py --sizes 100000 1000000 10000000

1. **Apply throughput.** The demo's 12 LFs (:mod:`lf_library.lfs.demo`) run over the same
   ``--apply-rows`` generated tickets twice: by lakelabel's apply stage (Spark ``local[*]``, votes
   committed to Delta, in a subprocess of this interpreter) and by snorkel 0.10's
   ``PandasLFApplier`` (one core, in a subprocess of ``--snorkel-python``) with the same LFs
   written as snorkel LFs in ``_snorkel_apply.py``. Both label matrices are compared cell by cell, so "the same
   LFs" is checked, not assumed. Reported: rows/s, rows/s per core (wall time x cores used) and
   rows per CPU second (CPU time of the whole process tree: driver, JVM, Python workers), which
   a busy machine disturbs less than wall time.
2. **The demo end to end** at each ``--sizes`` row count: data generated first
   (``python -m jobs.demo.data``, timed on its own), then ``lakelabel demo`` as a user runs it.
   Reported: whole command (Spark startup and MLflow included), stage times from the run
   summary, driver and JVM peak RSS (``VmHWM`` polled from ``/proc``), CPU seconds, votes and
   distinct patterns.

Results go to ``--out`` (default ``benchmarks/out/pipeline.json``) and a markdown table on
stdout. Work folders are deleted at the end unless ``--keep``. Not a lakelabel module: run it
as a script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import REPO_ROOT, format_machine_info, machine_info, markdown_table  # noqa: E402

DEFAULT_SNORKEL_PYTHON = os.environ.get("LAKELABEL_BENCH_PYTHON", "/work/benchvenv/bin/python")
SEED = 0

# ------------------------------------------------------------------------------ process accounting


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid``'s process tree, reaped children included."""
    total = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[11..14] = utime, stime, cutime, cstime (stat fields 14-17)
        total += sum(int(v) for v in fields[11:15])
    return total / _clock_ticks()


def _hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _own_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _clock_ticks()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class PeakRSS:
    """Polls the peak RSS (``VmHWM``) of a driver process and of the JVM it starts."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.driver_mib = 0.0
        self.jvm_mib = 0.0
        self._cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            d = _hwm_mib(self.pid)
            if d is not None:
                self.driver_mib = max(self.driver_mib, d)
            for p in tree_pids(self.pid):
                self._cpu[p] = max(self._cpu.get(p, 0.0), _own_cpu_seconds(p))
            for p in tree_pids(self.pid)[1:]:
                if _comm(p) == "java":
                    j = _hwm_mib(p)
                    if j is not None:
                        self.jvm_mib = max(self.jvm_mib, j)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of every process of the tree, as last polled (a process's last interval is lost)."""
        return sum(self._cpu.values())


def run_measured(cmd: list[str], *, log_path: Path, timeout: float) -> dict[str, Any]:
    """Run ``cmd``; wall seconds, CPU seconds of its whole tree, driver / JVM peak RSS, exit code."""
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        rss = PeakRSS(proc.pid)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -9
        finally:
            rss.stop()
        wall = time.perf_counter() - start
    return {"rc": rc, "wall_s": wall, "cpu_s": rss.cpu_seconds, "driver_peak_rss_mib": rss.driver_mib,
            "jvm_peak_rss_mib": rss.jvm_mib}


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------------------ data


def generate(path: Path, rows: int) -> float:
    """Write ``rows`` demo tickets to ``path`` (with the demo's reuse marker); returns seconds."""
    from jobs.demo.data import write_demo_source

    started = time.perf_counter()
    write_demo_source(str(path), rows, SEED, overwrite=True)
    (path / "_demo.json").write_text(json.dumps({"rows": rows, "seed": SEED}))  # `lakelabel demo` reuses it
    return time.perf_counter() - started


# ------------------------------------------------------------------------------ lakelabel apply worker


def lakelabel_apply_worker(lakehouse: str, rows: int, out: str) -> None:
    """Run in the project venv: lakelabel's apply stage over the generated rows, timed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from jobs import apply_lfs, delta_io
    from jobs.demo import demo_config
    from jobs.runtime.session import get_spark

    cfg = demo_config(lakehouse, rows, SEED, overrides=["mlflow.enabled=false"])
    spark = get_spark("lakelabel-bench-apply", master=cfg.spark.master, conf=cfg.spark.conf)
    cores = spark.sparkContext.defaultParallelism
    me = os.getpid()
    runs = []
    for attempt in ("cold", "warm"):  # warm: the JVM's JIT and the Python workers' imports are done
        cpu0, wall0 = tree_cpu_seconds(me), time.perf_counter()
        applied = apply_lfs.run(spark, cfg, run_id=f"bench-apply-{attempt}", force=True)
        runs.append((time.perf_counter() - wall0, tree_cpu_seconds(me) - cpu0))
    (wall, cpu), (warm_wall, warm_cpu) = runs
    # The label matrix, for the cell-by-cell comparison with snorkel's.
    votes = delta_io.delta_io(spark, cfg.tables.delta_io).read_table(spark, applied.votes_table)
    table = votes.select("row_id", "lf_name", "vote").toArrow()
    index = pc.cast(pc.utf8_slice_codeunits(table.column("row_id"), 1), pa.int64()).to_numpy()
    names = list(applied.lf_names)
    lf_index = pc.index_in(table.column("lf_name"), pa.array(names)).to_numpy()
    L = np.full((applied.n_rows, len(names)), -1, dtype=np.int8)
    L[index, lf_index] = table.column("vote").to_numpy()
    np.save(out + ".npy", L)
    Path(out).write_text(json.dumps({"rows": applied.n_rows, "wall_s": wall, "cpu_s": cpu, "cores": cores,
                                     "warm_wall_s": warm_wall, "warm_cpu_s": warm_cpu, "lf_names": names,
                                     "votes": sum(lf.votes for lf in applied.lfs)}))
    spark.stop()


# ------------------------------------------------------------------------------ the two parts


def bench_apply(work: Path, rows: int, snorkel_python: str | None, timeout: float) -> dict[str, Any]:
    import numpy as np

    lakehouse = work / "apply"
    source = lakehouse / "source" / "tickets"
    print(f"apply: generating {rows:,} rows", flush=True)
    generate(source, rows)
    result: dict[str, Any] = {"rows": rows}
    print("apply: lakelabel apply stage", flush=True)
    out = work / "lakelabel_apply.json"
    run = run_measured([sys.executable, __file__, "--worker", "lakelabel-apply", str(lakehouse), str(rows), str(out)],
                       log_path=work / "lakelabel_apply.log", timeout=timeout)
    if run["rc"] != 0:
        raise SystemExit(f"lakelabel apply worker failed (rc {run['rc']}):\n{_tail(work / 'lakelabel_apply.log')}")
    ours = json.loads(out.read_text())
    ours["process"] = run
    result["lakelabel"] = ours
    if snorkel_python:
        print(f"apply: snorkel PandasLFApplier ({snorkel_python})", flush=True)
        sout = work / "snorkel_apply.json"
        srun = run_measured([snorkel_python, __file__, "--worker", "snorkel", str(source), str(sout)],
                            log_path=work / "snorkel_apply.log", timeout=timeout)
        if srun["rc"] != 0:
            result["snorkel_error"] = _tail(work / "snorkel_apply.log")
        else:
            theirs = json.loads(sout.read_text())
            theirs["process"] = srun
            result["snorkel"] = theirs
            L_ours = np.load(str(out) + ".npy")
            L_theirs = np.load(str(sout) + ".npy")
            order = [theirs["lf_names"].index(n) for n in ours["lf_names"]]
            L_theirs = L_theirs[:, order]
            diff = L_ours != L_theirs
            result["same_votes"] = bool(not diff.any())
            result["differing_cells"] = {n: int(c) for n, c in zip(ours["lf_names"], diff.sum(axis=0)) if c}
    ours["warm"] = {"rows": ours["rows"], "cores": ours["cores"], "wall_s": ours.pop("warm_wall_s"),
                    "cpu_s": ours.pop("warm_cpu_s")}
    for r in (result["lakelabel"], result["lakelabel"]["warm"], result.get("snorkel")):
        if r:
            r["rows_per_s"] = r["rows"] / r["wall_s"]
            r["rows_per_s_per_core"] = r["rows"] / r["wall_s"] / r["cores"]
            r["rows_per_cpu_s"] = r["rows"] / r["cpu_s"]
    if "snorkel" in result:
        snorkel = result["snorkel"]
        for key, r in (("", result["lakelabel"]), ("warm_", result["lakelabel"]["warm"])):
            result[f"{key}speedup_per_core"] = r["rows_per_s_per_core"] / snorkel["rows_per_s_per_core"]
            result[f"{key}speedup_per_cpu_s"] = r["rows_per_cpu_s"] / snorkel["rows_per_cpu_s"]
    return result


def bench_demo(work: Path, rows: int, timeout: float) -> dict[str, Any]:
    lakehouse = work / f"demo_{rows}"
    print(f"demo {rows:,}: generating data", flush=True)
    gen_s = generate(lakehouse / "source" / "tickets", rows)
    summary_path = work / f"demo_{rows}.json"
    lakelabel = str(Path(sys.executable).with_name("lakelabel"))
    cmd = [lakelabel, "demo", "--rows", str(rows), "--lakehouse", str(lakehouse), "--summary-json", str(summary_path)]
    print(f"demo {rows:,}: {' '.join(cmd[1:])}", flush=True)
    load_before = os.getloadavg()
    run = run_measured(cmd, log_path=work / f"demo_{rows}.log", timeout=timeout)
    if run["rc"] != 0:
        raise SystemExit(f"lakelabel demo --rows {rows} failed (rc {run['rc']}):\n{_tail(work / f'demo_{rows}.log')}")
    summary = json.loads(summary_path.read_text())
    t = summary["timings_seconds"]
    out = {
        "rows": rows,
        "generate_s": gen_s,
        "command_s": run["wall_s"],
        "command_cpu_s": run["cpu_s"],
        "pipeline_s": t["total"],
        "stages_s": {k: t[k] for k in ("apply", "aggregate", "fit", "write")},
        "report_s": t.get("report"),  # the demo's analysis and HTML report, after the pipeline
        "driver_peak_rss_mib": run["driver_peak_rss_mib"],
        "jvm_peak_rss_mib": run["jvm_peak_rss_mib"],
        "votes": sum(lf["votes"] for lf in summary["lfs"]),
        "patterns": summary["metrics"].get("patterns"),
        "accuracy": summary["metrics"].get("accuracy"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"demo {rows:,}: command {out['command_s']:.1f}s, pipeline {out['pipeline_s']:.1f}s, "
          f"driver peak RSS {out['driver_peak_rss_mib']:.0f} MiB", flush=True)
    shutil.rmtree(lakehouse, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------ report


def report(info: dict[str, Any], apply: dict[str, Any] | None, demos: list[dict[str, Any]]) -> str:
    parts = [format_machine_info(info)]
    if apply:
        rows = []
        sides = (("lakelabel apply stage, first in the session (votes committed)", apply.get("lakelabel")),
                 ("lakelabel apply stage, again (JIT and worker imports done)", (apply.get("lakelabel") or {}).get("warm")),
                 ("snorkel 0.10 PandasLFApplier", apply.get("snorkel")))
        for label, r in sides:
            if r:
                rows.append([label, f"{r['rows']:,}", r["cores"], f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
                             f"{r['rows_per_s']:,.0f}", f"{r['rows_per_s_per_core']:,.0f}",
                             f"{r['rows_per_cpu_s']:,.0f}"])
        parts.append(markdown_table(["apply", "rows", "cores", "wall s", "CPU s (tree)", "rows/s", "rows/s/core",
                                     "rows/CPU s"], rows))
        if "speedup_per_core" in apply:
            parts.append(f"- lakelabel vs snorkel: {apply['speedup_per_core']:.1f}x per core (wall), "
                         f"{apply['speedup_per_cpu_s']:.1f}x per CPU second; run again in the same session: "
                         f"{apply['warm_speedup_per_core']:.1f}x per core, {apply['warm_speedup_per_cpu_s']:.1f}x per "
                         f"CPU second (target >= 10x per core); "
                         f"same label matrix: {apply['same_votes']}"
                         + (f" (differing cells per LF: {apply['differing_cells']})" if apply["differing_cells"] else ""))
        elif "snorkel_error" in apply:
            parts.append(f"- snorkel side failed:\n```\n{apply['snorkel_error']}\n```")
    if demos:
        rows = []
        snorkel = (apply or {}).get("snorkel")
        for d in demos:
            s = d["stages_s"]
            # The apply stage of the demo (source check, row hashes, LFs, votes commit) against
            # snorkel's applier per core: the issue's own measure, at every size.
            per_core = d["rows"] / s["apply"] / (os.cpu_count() or 1)
            versus = f"{per_core / snorkel['rows_per_s_per_core']:.1f}x" if snorkel else "–"
            report_s = d.get("report_s")
            rows.append([f"{d['rows']:,}", f"{d['generate_s']:.1f}", f"{d['command_s']:.1f}",
                         f"{report_s:.1f}" if report_s is not None else "–", f"{d['pipeline_s']:.1f}",
                         f"{s['apply']:.1f}", f"{per_core:,.0f}", versus,
                         f"{s['aggregate']:.1f}", f"{s['fit']:.2f}", f"{s['write']:.1f}",
                         f"{d['command_cpu_s']:.0f}", f"{d['driver_peak_rss_mib']:.0f}", f"{d['jvm_peak_rss_mib']:.0f}",
                         f"{d['votes']:,}", f"{d['patterns']:,}" if d["patterns"] is not None else None,
                         "/".join(f"{x:g}" for x in d["load_average_before"])])
        parts.append(markdown_table(
            ["rows", "generate s", "demo command s", "of which report s", "pipeline s", "apply s",
             "apply rows/s/core", "apply vs snorkel per core", "aggregate s", "fit s", "write s",
             "CPU s", "driver peak RSS MiB", "JVM peak RSS MiB", "votes", "patterns", "load before (1/5/15)"], rows))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000],
                   help="demo row counts end to end (default 100000 1000000 10000000; none to skip)")
    p.add_argument("--apply-rows", type=int, default=1_000_000,
                   help="rows for the apply comparison with snorkel (default 1000000; 0 to skip)")
    p.add_argument("--snorkel-python", default=DEFAULT_SNORKEL_PYTHON,
                   help=f"interpreter with snorkel 0.10 (default {DEFAULT_SNORKEL_PYTHON}, or $LAKELABEL_BENCH_PYTHON)")
    p.add_argument("--no-snorkel", action="store_true", help="skip the snorkel side")
    p.add_argument("--work", help="work folder (default: a temporary folder, deleted at the end)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per subprocess (default 3600)")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "out" / "pipeline.json"))
    args = p.parse_args(argv)

    snorkel_python = None if args.no_snorkel else args.snorkel_python
    if snorkel_python and not Path(snorkel_python).exists():
        raise SystemExit(f"--snorkel-python {snorkel_python} does not exist; create the bench venv "
                         f"(benchmarks/README.md) or pass --no-snorkel")
    info = machine_info()
    print(format_machine_info(info), flush=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="lakelabel-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": info, "apply": None, "demo": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.apply_rows:
            results["apply"] = bench_apply(work, args.apply_rows, snorkel_python, args.timeout)
            shutil.rmtree(work / "apply", ignore_errors=True)
            out.write_text(json.dumps(results, indent=2))
        for rows in args.sizes:
            results["demo"].append(bench_demo(work, rows, args.timeout))
            out.write_text(json.dumps(results, indent=2))
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps(results, indent=2))
    print()
    print(report(info, results["apply"], results["demo"]))
    print(f"\nwrote {out}")
    return 0


def _worker(argv: list[str]) -> int:
    kind, *rest = argv
    if kind == "snorkel":
        from _snorkel_apply import snorkel_worker

        snorkel_worker(*rest)
    elif kind == "lakelabel-apply":
        lakelabel_apply_worker(rest[0], int(rest[1]), rest[2])
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        raise SystemExit(_worker(sys.argv[2:]))
    raise SystemExit(main())
