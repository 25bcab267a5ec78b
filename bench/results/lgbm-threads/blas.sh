#!/bin/bash
# 10k day, interleaved (order rotated), 7 rounds: {all thread variables unset, only OPENBLAS_NUM_THREADS=1} x {main, branch}
set -e
cd /work/wt/lgbm-threads
cases=("all main" "all branch" "blas1 main" "blas1 branch")
n=${#cases[@]}
uptime
for i in 1 2 3 4 5 6 7; do
  for k in $(seq 0 $((n - 1))); do
    read -r mode c <<< "${cases[$(( (k + i) % n ))]}"
    if [ $c = main ]; then code=/tmp/lt-main; else code=/work/wt/lgbm-threads; fi
    if [ $mode = all ]; then pools="-u OPENBLAS_NUM_THREADS"; else pools="OPENBLAS_NUM_THREADS=1"; fi
    env -u OMP_NUM_THREADS -u MKL_NUM_THREADS -u ARROW_NUM_THREADS $pools .venv/bin/python -m bench.step_stages --size 10k --repeats 1 --library-threads inherit --data-dir /tmp/lt-bench --code $code --json /tmp/lt-bench/json/blas-$mode-$c-$i.json > /dev/null
    echo "$i $mode $c $(cat /proc/loadavg)"
  done
done
uptime
