#!/bin/bash
# Row masks after an LF edit (jobs/grouped_masks.py): a 1M-row demo lakehouse, then runs that each restore it,
# run the pipeline with one LF added (a declared keyword LF: it runs on every row, the other twelve keep their
# votes), then append 50k rows (rows 2,000,000-2,049,999 of the demo sequence) and run again.
#   usage: benchmarks/lf_edit_masks.sh DIR setup
#          benchmarks/lf_edit_masks.sh DIR run LABEL
# Prints, for each of the two runs, the pipeline line of its log and its wall time (logs: DIR/run-LABEL-*.log).
# Run from the repository root; PYTHONPATH=<another checkout> times that checkout's code with this venv.
set -euo pipefail
dir=$1; mode=$2
py=${PYTHON:-.venv/bin/python}
if [ "$mode" = setup ]; then
  rm -rf "$dir/lh" "$dir/base"
  mkdir -p "$dir"
  .venv/bin/lakelabel demo --rows 1000000 --lakehouse "$dir/lh" --set report.enabled=false \
    --set mlflow.enabled=false --run-id base > "$dir/demo.log" 2>&1
  cp -a "$dir/lh" "$dir/base"
  "$py" - "$dir" <<'PY'
import sys
import pyarrow.parquet as pq
from jobs.demo.data import _generate_range
d = sys.argv[1]
pq.write_table(_generate_range(2_000_000, 2_050_000, 0), f"{d}/append.parquet")
PY
  sed -e '/^lfs:/,/^apply:/c\
lfs:\
  modules: [lf_library.lfs.demo]\
  declared:\
    - {name: kw_chargeback, kind: keyword, label: billing, field: text, keywords: [chargeback, charged twice]}\
apply:' conf/demo.yaml > "$dir/edit.yaml"
  exit 0
fi
label=$3
rm -rf "$dir/lh" && cp -a "$dir/base" "$dir/lh"
for step in edit append; do
  [ "$step" = append ] && cp -p "$dir/append.parquet" "$dir/lh/source/tickets/part-new.parquet"
  log="$dir/run-$label-$step.log"
  /usr/bin/time -f "wall %e s" .venv/bin/lakelabel run --config "$dir/edit.yaml" --set lakehouse="$dir/lh" \
    --set source.path="$dir/lh/source/tickets" --set report.enabled=false --set mlflow.enabled=false \
    --run-id "$label-$step" > "$log" 2>&1
  echo "$step $label load $(cut -d' ' -f1 /proc/loadavg) $(grep 'pipeline: done' "$log" | sed 's/.*pipeline: //') $(grep '^wall' "$log")"
done
