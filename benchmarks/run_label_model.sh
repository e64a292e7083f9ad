#!/usr/bin/env bash
# The label-model benchmark in one command: quality on the 13 real tasks (2 WRENCH LF tasks, 11
# crowdsourcing matrices) and speed/memory on synthetic matrices, lakelabel next to snorkel 0.10
# and crowd-kit 1.4.2 in the same scripts. Creates .benchvenv on first use (torch's CPU wheel,
# snorkel, crowd-kit, and this repo without its Spark dependencies).
# Usage: bash benchmarks/run_label_model.sh [DATA_DIR ...]
#        (default ../shared/data/wrench ../shared/data/labelmatrices)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -gt 0 ]; then data=("$@"); else data=(../shared/data/wrench ../shared/data/labelmatrices); fi
if [ ! -x .benchvenv/bin/python ]; then
  python3 -m venv .benchvenv
  .benchvenv/bin/pip install -q torch==2.13.0
  .benchvenv/bin/pip install -q "snorkel==0.10.0" "crowd-kit==1.4.2" "numpy>=1.26,<2.4" "scipy>=1.13,<1.17" "pandas>=2.2,<3"
  .benchvenv/bin/pip install -q -e . --no-deps
fi
mkdir -p benchmarks/out
.benchvenv/bin/python benchmarks/bench_quality.py --data "${data[@]}" --out benchmarks/out/quality.json
.benchvenv/bin/python benchmarks/bench_speed.py --out benchmarks/out/speed.json
