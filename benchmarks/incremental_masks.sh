#!/usr/bin/env bash
# Row masks of an incremental apply (RESULTS.md, sessions 24 and 25): a 1M-row demo lakehouse, then runs that
# each restore it and either append 50k rows (rows 2,000,000-2,049,999 of the demo sequence, ids after the old
# ones) or edit one source file (10k rows removed, every fifth row's text edited), and run the pipeline; or
# (lfedit) run it with one LF added (a declared keyword LF: it runs on every row, the other twelve keep their
# votes, and the apply groups the votes into masks: jobs/grouped_masks.py), then append the 50k rows and run again.
#   usage: benchmarks/incremental_masks.sh DIR setup
#          benchmarks/incremental_masks.sh DIR append|edit|force|lfedit LABEL   (force: append, then --force)
# Prints the pipeline line of each run's log and its wall time; the apply's "row masks ..." line is in
# DIR/run-LABEL*.log. Run from the repository root; PYTHONPATH=<another checkout> times that checkout's code.
set -euo pipefail
dir=$1; mode=$2
py=${PYTHON:-.venv/bin/python}
if [ "$mode" = setup ]; then
  # The demo runs where every run does (a votes commit records the source path: another path is a full apply).
  rm -rf "$dir/lh" "$dir/base"
  .venv/bin/lakelabel demo --rows 1000000 --lakehouse "$dir/lh" --set report.enabled=false \
    --set mlflow.enabled=false --run-id base > "$dir/demo.log" 2>&1
  cp -a "$dir/lh" "$dir/base"
  sed -e '/^lfs:/,/^apply:/c\
lfs:\
  modules: [lf_library.lfs.demo]\
  declared:\
    - {name: kw_chargeback, kind: keyword, label: billing, field: text, keywords: [chargeback, charged twice]}\
apply:' conf/demo.yaml > "$dir/lfedit.yaml"
  "$py" - "$dir" <<'PY'
import sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
from jobs.demo.data import _generate_range
d = sys.argv[1]
pq.write_table(_generate_range(2_000_000, 2_050_000, 0), f"{d}/append.parquet")
t = pq.read_table(f"{d}/base/source/tickets/part-00000.parquet")
t = t.slice(0, t.num_rows - 10_000)
edit = pa.array([i % 5 == 0 for i in range(t.num_rows)])
text = pc.if_else(edit, pc.binary_join_element_wise(t["text"], pa.scalar(" Please reply soon."), ""), t["text"])
i = t.schema.get_field_index("text")
pq.write_table(t.set_column(i, t.schema.field(i), text.cast(pa.string())), f"{d}/edit.parquet")
PY
  exit 0
fi
label=$3
rm -rf "$dir/lh" && cp -a "$dir/base" "$dir/lh"
run() {  # LABEL CONFIG [options]: one pipeline run, its line and wall time
  local log="$dir/run-$1.log"
  /usr/bin/time -f "wall %e s" .venv/bin/lakelabel run --config "$2" --set lakehouse="$dir/lh" \
    --set source.path="$dir/lh/source/tickets" --set report.enabled=false --set mlflow.enabled=false \
    --run-id "$1" "${@:3}" > "$log" 2>&1
  echo "$mode $1 load $(cut -d' ' -f1 /proc/loadavg) $(grep 'pipeline: done' "$log" | sed 's/.*pipeline: //') $(grep '^wall' "$log")"
}
case $mode in
  append|force) cp -p "$dir/append.parquet" "$dir/lh/source/tickets/part-new.parquet" ;;
  edit) cp -p "$dir/edit.parquet" "$dir/lh/source/tickets/part-00000.parquet" ;;
  lfedit)
    run "$label-edit" "$dir/lfedit.yaml"
    cp -p "$dir/append.parquet" "$dir/lh/source/tickets/part-new.parquet"
    run "$label-append" "$dir/lfedit.yaml"
    exit 0 ;;
esac
extra=(); [ "$mode" = force ] && extra=(--force)
run "$label" conf/demo.yaml "${extra[@]}"
