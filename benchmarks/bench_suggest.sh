#!/usr/bin/env bash
# `lakelabel suggest` on the demo tickets: ROWS source rows, LABELS gold dev labels (the first
# LABELS tickets, labelled with their true class), timed as a whole process with farm-bench,
# paired against another checkout of lakelabel when one is given (RESULTS.md, "Session 10").
# Usage (from anywhere): bash benchmarks/bench_suggest.sh WORKDIR [ROWS] [LABELS] [BASELINE_CHECKOUT] [RUNS]
# The baseline runs with this checkout's Python (.venv) from its own folder, so its code is imported.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=$(realpath -m "${1:?usage: bench_suggest.sh WORKDIR [ROWS] [LABELS] [BASELINE_CHECKOUT] [RUNS]}")
ROWS=${2:-1000000}
K=${3:-300}
BASE=${4:-}
RUNS=${5:-2}
PY=${PYTHON:-$HERE/.venv/bin/python}
mkdir -p "$W"
if [ ! -d "$W/demo/source/tickets" ]; then
  (cd "$HERE" && "$PY" -m jobs.cli demo --rows "$ROWS" --lakehouse "$W/demo" -q)
fi
"$PY" - "$W/demo/source/tickets" "$K" "$W/gold_$K.csv" <<'PYEOF'
import csv, sys
import pyarrow.dataset as ds
src, k, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = ds.dataset(src, format="parquet").head(k, columns=["ticket_id", "true_label"]).to_pylist()
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["row_id", "label", "annotator", "split"])
    w.writerows([r["ticket_id"], r["true_label"], "bench", "dev"] for r in rows)
PYEOF
C="--config $HERE/conf/demo.yaml --set lakehouse=$W/demo --set source.path=$W/demo/source/tickets --set mlflow.enabled=false --set tables.gold=$W/gold_$K"
(cd "$HERE" && "$PY" -m jobs.cli gold import $C --file "$W/gold_$K.csv" -q)  # a second import adds nothing
A="cd $HERE && $PY -m jobs.cli suggest $C --max 5 --out $W/this/suggested.py -q"
nproc; uname -srm; "$PY" --version; (cd "$HERE" && git rev-parse --short HEAD)
if [ -n "$BASE" ]; then
  (cd "$BASE" && git rev-parse --short HEAD)
  farm-bench -n "$RUNS" --warmup 0 --timeout 3600 \
    --vs "sh -c 'cd $BASE && $PY -m jobs.cli suggest $C --max 5 --out $W/base/suggested.py -q'" -- sh -c "$A"
  cmp "$W/this/suggested.csv" "$W/base/suggested.csv" && echo "the same candidate table from both checkouts"
else
  farm-bench -n "$RUNS" --warmup 0 --timeout 3600 -- sh -c "$A"
fi
