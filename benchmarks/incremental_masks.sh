#!/bin/bash
# Row masks of an incremental apply (RESULTS.md, session 24): a 1M-row demo lakehouse, then runs that each
# restore it and either append 50k rows (rows 2,000,000-2,049,999 of the demo sequence, ids after the old
# ones) or edit one source file (10k rows removed, every fifth row's text edited), and run the pipeline.
#   usage: benchmarks/incremental_masks.sh DIR setup
#          benchmarks/incremental_masks.sh DIR append|edit|force LABEL   (force: append, then --force)
# Prints the pipeline line of the run's log and its wall time; the apply's "row masks ... carried" line is in
# DIR/run-LABEL.log. Run from the repository root.
set -euo pipefail
dir=$1; mode=$2
py=${PYTHON:-.venv/bin/python}
if [ "$mode" = setup ]; then
  # The demo runs where every run does (a votes commit records the source path: another path is a full apply).
  rm -rf "$dir/lh" "$dir/base"
  .venv/bin/lakelabel demo --rows 1000000 --lakehouse "$dir/lh" --set report.enabled=false \
    --set mlflow.enabled=false --run-id base > "$dir/demo.log" 2>&1
  cp -a "$dir/lh" "$dir/base"
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
case $mode in
  append|force) cp -p "$dir/append.parquet" "$dir/lh/source/tickets/part-new.parquet" ;;
  edit) cp -p "$dir/edit.parquet" "$dir/lh/source/tickets/part-00000.parquet" ;;
esac
extra=(); [ "$mode" = force ] && extra=(--force)
/usr/bin/time -f "wall %e s" .venv/bin/lakelabel run --config conf/demo.yaml --set lakehouse="$dir/lh" \
  --set source.path="$dir/lh/source/tickets" --set report.enabled=false --set mlflow.enabled=false \
  --run-id "$label" "${extra[@]}" > "$dir/run-$label.log" 2>&1
echo "$mode $label $(grep 'pipeline: done' "$dir/run-$label.log" | sed 's/.*pipeline: //') $(grep '^wall' "$dir/run-$label.log")"
