"""Which deltalake versions abort a plain Python process at interpreter exit (delta-rs #2184).

With some deltalake releases, a process that reads a Delta table with
``DeltaTable(path).to_pandas()`` and then exits normally sometimes dies with
``terminate called without an active exception`` and exit code 134 (SIGABRT): a delta-rs
runtime thread is still alive while the interpreter tears down. This script measures it per
version:

1. for each version, a scratch virtualenv (``--venvs``, default ``/tmp/lakelabel-deltalake-venvs``)
   with only ``deltalake==VERSION`` and the ``--with`` packages (default the versions lakelabel's own
   environment resolves: ``pyarrow==22.0.0 pandas==2.3.3``), from the pip cache when warm;
2. one process writes a small table with that version;
3. ``--runs`` fresh processes (default 30) each read it with ``DeltaTable(path).to_pandas()``
   and exit; the script counts exit codes.

Run: ``python benchmarks/deltalake_exit.py --versions 1.2.1 1.3.3 1.4.2 1.5.1 1.6.0 1.6.3 1.6.6``.
Prints a Markdown table (version, runs, rc 0, rc 134, other); results are in RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITE = """
import sys, pandas as pd
from deltalake import write_deltalake
write_deltalake(sys.argv[1], pd.DataFrame({"row_id": range(1000), "label": [i % 3 for i in range(1000)]}))
"""

READ = """
import sys
from deltalake import DeltaTable
df = DeltaTable(sys.argv[1]).to_pandas()
assert len(df) == 1000, len(df)
"""


def venv_for(version: str, root: Path, extra: list[str]) -> Path:
    folder = root / (version + "-" + "-".join(e.replace("==", "") for e in extra))
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"deltalake=={version}", *extra], check=True)
    return python


def measure(version: str, runs: int, root: Path, extra: list[str]) -> collections.Counter:
    python = venv_for(version, root, extra)
    with tempfile.TemporaryDirectory(prefix=f"dl-{version}-") as tmp:
        table = os.path.join(tmp, "t")
        subprocess.run([str(python), "-c", WRITE, table], check=True)
        codes: collections.Counter = collections.Counter()
        for _ in range(runs):
            rc = subprocess.run([str(python), "-c", READ, table], capture_output=True).returncode
            codes[rc] += 1
        return codes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--versions", nargs="+", required=True)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--venvs", default="/tmp/lakelabel-deltalake-venvs")
    p.add_argument("--with", dest="extra", nargs="*", default=["pyarrow==22.0.0", "pandas==2.3.3"])
    args = p.parse_args()
    root = Path(args.venvs)
    root.mkdir(parents=True, exist_ok=True)
    print(f"with {' '.join(args.extra)}")
    print("| deltalake | runs | rc 0 | rc 134 (abort at exit) | other rc | seconds |")
    print("|---|---|---|---|---|---|")
    for version in args.versions:
        t0 = time.perf_counter()
        codes = measure(version, args.runs, root, args.extra)
        other = {rc: n for rc, n in codes.items() if rc not in (0, 134, -6)}
        aborts = codes.get(134, 0) + codes.get(-6, 0)
        print(f"| {version} | {args.runs} | {codes.get(0, 0)} | {aborts} | {other or '-'} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
