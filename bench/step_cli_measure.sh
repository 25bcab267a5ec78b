#!/usr/bin/env bash
# Per-step wall time and peak memory at default size and 10x: simulate 39 days, train 38, time the 39th step.
set -e
cd "$(dirname "$0")/.."
FP=.venv/bin/fraudpipe
for scale in 1 10; do
  d=${OUT:-/tmp/fraudpipe-step-measure}/scale$scale; rm -rf $d
  $FP simulate --out $d/landing --days 39 --customers $((5000*scale)) --terminals $((10000*scale)) --seed 0 >/dev/null
  $FP ingest --source $d/landing --storage $d/share >/dev/null
  $FP train --storage $d/share --through 2018-05-08 --json >/dev/null
  /usr/bin/time -f "scale=$scale wall=%es user=%Us sys=%Ss maxrss=%MKB" $FP step --storage $d/share --dataset 2018-05-09 --json > $d/step.json
  python3 -c "import json;r=json.load(open('$d/step.json'))[0];print('scale=$scale in-process step seconds', r['seconds'], 'transactions', r['metrics']['transactions'])"
done
