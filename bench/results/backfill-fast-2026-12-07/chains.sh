#!/bin/bash
# In-process 183-day chains (as `fraudpipe train` runs them), old and new interleaved: CPU.
out=/tmp/backfill-fast/chains; mkdir -p $out
one() {  # tag code
  local tag=$1 code=$2
  ( cd $code && .venv/bin/python /work/wt/backfill-fast/bench/results/backfill-fast-2026-12-07/mkshare.py /tmp/backfill-fast/c-$tag /tmp/backfill-fast/bd/landing-d183-txdefault-s0 )
  echo "$(date -u +%T) start $tag load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/order.txt
  ( cd $code && env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=/tmp/backfill-fast/pyc-${tag%%[0-9]*} .venv/bin/python /work/wt/backfill-fast/bench/results/backfill-fast-2026-12-07/chain_stages.py /tmp/backfill-fast/c-$tag 2018-09-30 > $out/$tag.json 2> $out/$tag.err )
  echo "$(date -u +%T) end $tag load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/order.txt
}
while ! grep -q done /tmp/backfill-fast/abba/order.txt; do sleep 5; done
one old1 /work/wt/base
one new1 /work/wt/backfill-fast
one new2 /work/wt/backfill-fast
one old2 /work/wt/base
echo done >> $out/order.txt
