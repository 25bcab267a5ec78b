#!/bin/bash
# Interleaved (order rotated), 5 rounds: {10k day, day 180 of 183} x {all thread variables unset,
# only OPENBLAS_NUM_THREADS=1} x {main, branch}; OMP_NUM_THREADS unset in every case.
set -e
cd /work/wt/lgbm-threads
cases=()
for where in 10k d180; do for mode in all blas1; do for c in main branch; do cases+=("$where $mode $c"); done; done; done
n=${#cases[@]}
uptime
for i in 1 2 3 4 5; do
  for k in $(seq 0 $((n - 1))); do
    read -r where mode c <<< "${cases[$(( (k + i * 3) % n ))]}"
    if [ $c = main ]; then code=/tmp/lt-main; else code=/work/wt/lgbm-threads; fi
    if [ $where = 10k ]; then day="--size 10k"; else day="--history-day 180"; fi
    if [ $mode = all ]; then pools="-u OPENBLAS_NUM_THREADS"; else pools="OPENBLAS_NUM_THREADS=1"; fi
    env -u OMP_NUM_THREADS -u MKL_NUM_THREADS -u ARROW_NUM_THREADS $pools .venv/bin/python -m bench.step_stages $day --repeats 1 --library-threads inherit --data-dir /tmp/lt-bench --code $code --json /tmp/lt-bench/json/quiet-$where-$mode-$c-$i.json > /dev/null
    echo "$i $where $mode $c $(cat /proc/loadavg)"
  done
done
uptime
