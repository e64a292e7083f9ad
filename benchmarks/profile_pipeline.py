"""Where the demo pipeline's CPU goes, per Spark job (Spark REST API), in one process.

Runs ``jobs.pipeline.run`` on the demo config (report off) over an existing demo source, with the
Spark UI on, then reads every Spark job's stages from the REST API and prints one row per
lakelabel step (the job description ``describe()`` set): task time (executorRunTime), JVM CPU
(executorCpuTime), shuffle write, tasks. The Python workers' CPU is roughly task time minus JVM CPU.
Also the CPU seconds of the whole process tree (driver, JVM, Python workers) during the pipeline,
and the stage times of the run summary. Run it with the tree to measure first on ``PYTHONPATH``::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/profile_pipeline.py --source /tmp/src/tickets --work /tmp/p1

``--source``: a demo source folder (``python -m jobs.demo.data`` or a demo lakehouse's
``source/tickets``); it is only read. Not a lakelabel module: run it as a script.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo.extend(int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split())
        except OSError:
            pass
    return out


class TreeCPU:
    """CPU seconds of this process's tree, polled (processes that exit keep their last value)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.poll()

    def poll(self) -> float:
        for p in _tree(os.getpid()):
            self.seen[p] = max(self.seen.get(p, 0.0), _cpu(p))
        return sum(self.seen.values())


def _get(url: str):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def profile_jobs(spark) -> list[dict]:
    """Per lakelabel step: task time, JVM CPU, shuffle write, tasks (from the REST API)."""
    base = spark.sparkContext.uiWebUrl.rstrip("/") + "/api/v1/applications/" + spark.sparkContext.applicationId
    stages = {s["stageId"]: s for s in _get(base + "/stages?status=complete")}
    rows: dict[str, dict] = defaultdict(lambda: {"run_s": 0.0, "jvm_cpu_s": 0.0, "shuffle_write_mb": 0.0,
                                                 "tasks": 0, "jobs": 0})
    for job in _get(base + "/jobs"):
        key = (job.get("description") or job.get("name") or "?").split("\n")[0][:90]
        row = rows[key]
        row["jobs"] += 1
        for sid in job["stageIds"]:
            s = stages.pop(sid, None)  # a stage reused by a later job counts once
            if s is None:
                continue
            row["run_s"] += s["executorRunTime"] / 1e3
            row["jvm_cpu_s"] += s["executorCpuTime"] / 1e9
            row["shuffle_write_mb"] += s["shuffleWriteBytes"] / 2**20
            row["tasks"] += s["numTasks"]
    return [{"step": k, **{n: round(v, 1) if isinstance(v, float) else v for n, v in r.items()}}
            for k, r in sorted(rows.items(), key=lambda kv: -kv[1]["run_s"])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", required=True, help="demo source folder (read only)")
    p.add_argument("--work", required=True, help="lakehouse folder for this run (replaced)")
    p.add_argument("--out", help="JSON results (default WORK.json)")
    args = p.parse_args()

    import shutil

    from jobs import pipeline
    from jobs.demo import demo_config
    from jobs.runtime.session import get_spark

    shutil.rmtree(args.work, ignore_errors=True)
    cfg = demo_config(args.work, 1, 0, overrides=[f"source.path={args.source}", "report.enabled=false"])
    cpu = TreeCPU()
    spark = get_spark("profile", conf={"spark.ui.enabled": "true", "spark.ui.port": "0"})
    before, t0 = cpu.poll(), time.perf_counter()
    summary = pipeline.run(spark, cfg, run_id="profile").summary
    wall, used = time.perf_counter() - t0, cpu.poll() - before
    jobs = profile_jobs(spark)
    load = os.getloadavg()
    import jobs as _jobs  # which tree ran

    result = {"tree": str(Path(_jobs.__file__).resolve().parents[1]), "pipeline_wall_s": round(wall, 1),
              "tree_cpu_s": round(used, 1), "load": [round(x, 1) for x in load],
              "timings_s": summary["timings_seconds"], "jobs": jobs,
              "accuracy": summary["metrics"].get("accuracy"), "patterns": summary["metrics"].get("patterns")}
    Path(args.out or f"{args.work}.json").write_text(json.dumps(result, indent=1))
    print(f"tree {result['tree']}: pipeline {wall:.1f}s wall, {used:.1f} CPU s (tree), load {load[0]:.1f}")
    print("stages:", summary["timings_seconds"])
    print(f"{'step':90} {'task s':>8} {'JVM CPU s':>9} {'shuffle MB':>10} {'tasks':>6}")
    for j in jobs:
        print(f"{j['step']:90} {j['run_s']:8.1f} {j['jvm_cpu_s']:9.1f} {j['shuffle_write_mb']:10.1f} {j['tasks']:6d}")


if __name__ == "__main__":
    main()
