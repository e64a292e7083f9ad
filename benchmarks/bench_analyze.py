"""Time ``lakelabel analyze`` and ``lakelabel report`` on a demo lakehouse; print one RESULTS.md row per command.

    python benchmarks/bench_analyze.py --rows 1000000 --lakehouse /tmp/d1m [--repeat 2]

Generates the demo (``lakelabel demo --rows N --lakehouse DIR``, which runs the pipeline) unless
DIR already holds labels for N rows, then runs each command under ``/usr/bin/time -v`` and reports
the job's own time (from ``--summary-json``), the whole command (Spark startup included), and the
peak resident memory of the largest process of the command (the Spark JVM; the driver's Python
process is smaller), which should not grow with the row count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "lakelabel"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv`` under /usr/bin/time -v: (wall seconds, peak RSS GiB, stderr)."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, (int(rss.group(1)) / 2**20 if rss else float("nan")), proc.stderr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--lakehouse", required=True)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    lake = Path(args.lakehouse).resolve()
    env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    marker = lake / "source" / "tickets" / "_demo.json"
    config = lake / "bench.yaml"
    if not (marker.exists() and json.loads(marker.read_text()).get("rows") == args.rows and (lake / "labels").exists()):
        print(f"generating the demo at {lake} ({args.rows:,} rows) ...", flush=True)
        timed([str(BIN), "demo", "--rows", str(args.rows), "--lakehouse", str(lake), "--set", "report.enabled=false"],
              env)
    config.write_text(
        f"lakehouse: {lake}\nsource: {{path: {lake / 'source' / 'tickets'}, format: parquet, id_column: ticket_id, "
        f"gold_column: true_label}}\nlfs: {{modules: [lf_library.lfs.demo]}}\n"
        f"slices: {{modules: [lf_library.lfs.demo_slices]}}\nmlflow: {{experiment: lakelabel-demo}}\n")
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"load average at start {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}")
    print("| rows | command | job s | whole command s | peak RSS GiB (largest process) | load avg (1 min) after |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.repeat):
        for command in ("analyze", "report"):
            summary = lake / f"bench_{command}.json"
            wall, rss, _ = timed([str(BIN), command, "--config", str(config), "--summary-json", str(summary), "-q"], env)
            s = json.loads(summary.read_text())
            job = s["timings_seconds"].get(command, s["timings_seconds"]["analyze"])
            print(f"| {args.rows:,} | {command} | {job:.1f} | {wall:.1f} | {rss:.2f} | {os.getloadavg()[0]:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
