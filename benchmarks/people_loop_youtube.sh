#!/usr/bin/env bash
# The people-in-the-loop recipe of the README on YouTube, end to end, and its accuracy table:
# run -> annotate 100 comments of videos 1-4 (stratified) -> label them (from the CLASS column) ->
# gold import (as dev) -> suggest LFs -> rerun with shipped / suggested / both LFs, with and
# without the dev labels; accuracy on video 5 (Shakira), never seen by any of these steps.
# Usage (from the repo root): bash benchmarks/people_loop_youtube.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/lakelabel-people-youtube}
rm -rf "$W" && mkdir -p "$W/lfs"
LL=.venv/bin/lakelabel
C=(--config conf/youtube.yaml --set "lakehouse=$W/lake" -q)
t0=$(date +%s)
# conf/youtube.yaml's model LF needs its model registered in this lakehouse's MLflow store.
.venv/bin/python -m lf_library.lfs.train_youtube_model --lakehouse "$W/lake"

$LL run "${C[@]}" --run-id shipped --summary-json "$W/shipped.json"
$LL annotate "${C[@]}" --strategy stratified --n 100 --out "$W/to_label.csv"
.venv/bin/python benchmarks/youtube_gold_labels.py --todo "$W/to_label.csv" --out "$W/labeled.csv"
$LL gold import "${C[@]}" --file "$W/labeled.csv" --split dev
$LL gold import "${C[@]}" --file "$W/labeled.csv" --split dev   # again: adds nothing
$LL suggest "${C[@]}" --max 10 --out "$W/lfs/youtube_suggested.py"
export PYTHONPATH="$W/lfs"   # the suggested module is importable by name

run() {  # run-id, extra --set arguments...
  local id=$1; shift
  $LL run "${C[@]}" --run-id "$id" --summary-json "$W/$id.json" "$@"
}
run shipped_dev --set label_model.use_dev_labels=true
run suggested --set "lfs.modules=[youtube_suggested]"
run suggested_dev --set "lfs.modules=[youtube_suggested]" --set label_model.use_dev_labels=true
run both --set "lfs.modules=[lf_library.lfs.youtube, youtube_suggested]"
run both_dev --set "lfs.modules=[lf_library.lfs.youtube, youtube_suggested]" --set label_model.use_dev_labels=true
echo "whole loop: $(( $(date +%s) - t0 )) s"

.venv/bin/python - "$W" <<'PY'
import json, sys
from pathlib import Path
w = Path(sys.argv[1])
rows = [("(a) shipped LFs", "shipped"), ("(b) suggested LFs alone", "suggested"), ("(c) shipped + suggested", "both")]
print("| video 5 (Shakira), 369 comments | LFs | coverage | label model | label model + 100 dev labels | majority vote |")
print("|---|---|---|---|---|---|")
for name, rid in rows:
    m = json.loads((w / f"{rid}.json").read_text())
    d = json.loads((w / f"{rid}_dev.json").read_text())
    print(f"| {name} | {len(m['lfs'])} | {m['metrics']['eval_coverage']:.1%} | {m['metrics']['eval_accuracy']:.1%} "
          f"| {d['metrics']['eval_accuracy']:.1%} | {m['metrics']['eval_mv_accuracy']:.1%} |")
PY
