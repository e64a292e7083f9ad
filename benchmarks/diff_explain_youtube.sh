#!/usr/bin/env bash
# Change an LF and see what it did, on YouTube (README "What changed and why"): run with a declared ham
# keyword LF kw_video_topics, edit it (more keywords: a new version), rerun, diff, explain the flipped
# comments, then a third edit that drift warns about and a fourth (reverting it) that
# drift.fail_on_lf_coverage stops before it publishes. Prints each
# command's wall time; the summaries land in WORKDIR. Evaluation and MLflow are off (not what is measured).
# Usage (from the repo root): bash benchmarks/diff_explain_youtube.sh [WORKDIR]
set -uo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/lakelabel-diff-youtube}
rm -rf "$W" && mkdir -p "$W"
LL=.venv/bin/lakelabel
C=(--config conf/youtube.yaml --set "lakehouse=$W/lake" --set evaluation=null --set mlflow.enabled=false -q)
GIVE='{name: kw_giveaway, kind: keyword, label: spam, field: CONTENT, keywords: [giveaway, free gift, gift card, promo code, win an, winner]}'
topics() { echo "lfs.declared=[$GIVE, {name: kw_video_topics, kind: keyword, label: ham, field: CONTENT, keywords: [$1]}]"; }
timed() {  # label, command...
  local label=$1; shift
  local t0=$(date +%s.%N)
  "$@"; local rc=$?
  printf '%-28s exit %s  %6.1f s\n' "$label" "$rc" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a "$W/times.txt" >&2
}

timed "run a" $LL run "${C[@]}" --set "$(topics 'megan fox')" --run-id a --summary-json "$W/a.json"
timed "run b (LF edited)" $LL run "${C[@]}" --set "$(topics 'megan fox, megan, fox, shuffle, tiger, rihanna')" \
  --run-id b --summary-json "$W/b.json"
timed "diff a -> b" $LL diff "${C[@]}" --summary-json "$W/diff.json"
ids=$(.venv/bin/python -c "
from deltalake import DeltaTable
df = DeltaTable('$W/lake/label_changes').to_pandas()
print(' '.join(df[df.change == 'flipped'].sort_values('label_before', ascending=False).row_id.head(2)))")
for id in $ids; do
  timed "explain $id" $LL explain "${C[@]}" --row-id "$id" > "$W/explain-$id.txt"
  $LL explain "${C[@]}" --row-id "$id" --run-id a --json > "$W/explain-$id-a.json"
done
timed "run c (drift warns)" $LL run "${C[@]}" --set drift.fail_on_label_shift=0.02 \
  --set "$(topics 'megan fox, megan, fox, shuffle, tiger, rihanna, love, song')" --run-id c
timed "run d (drift fails, exit 2)" $LL run "${C[@]}" --set drift.fail_on_lf_coverage=0.1 \
  --set "$(topics 'megan fox, megan, fox, shuffle, tiger, rihanna')" --run-id d
timed "run e (rihanna dropped)" $LL run "${C[@]}" --set "$(topics 'megan fox, megan, fox, shuffle, tiger')" --run-id e \
  --summary-json "$W/e.json"
timed "diff b -> e" $LL diff "${C[@]}" --from b --to e --summary-json "$W/diff-b-e.json"
cat "$W/times.txt"
