#!/bin/bash
# ABBA: main (new) and 07e26a9 (old, /work/wt/base) 183-day backfills, own data dirs and bytecode caches.
set -u
out=/tmp/s38/abba; mkdir -p $out
run() {
  local tag=$1 code=$2 data=$3 pyc=$4 extra=${5:-}
  echo "$(date -u +%T) start $tag load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/order.txt
  ( cd $code && env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$pyc /usr/bin/time -f "$tag wall %e user %U sys %S" \
      .venv/bin/python -m bench backfill $extra --data-dir $data --results-dir $out/$tag ) > $out/$tag.log 2>&1
  echo "$(date -u +%T) end $tag load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/order.txt
}
NEW=/work/main; OLD=/work/wt/base
run warm-new $NEW /tmp/backfill-fast/bd /tmp/s38/pyc-new --quick
run warm-old $OLD /tmp/backfill-fast/bd-old /tmp/backfill-fast/pyc-old --quick
run new1 $NEW /tmp/backfill-fast/bd /tmp/s38/pyc-new
run old1 $OLD /tmp/backfill-fast/bd-old /tmp/backfill-fast/pyc-old
run old2 $OLD /tmp/backfill-fast/bd-old /tmp/backfill-fast/pyc-old
run new2 $NEW /tmp/backfill-fast/bd /tmp/s38/pyc-new
echo done >> $out/order.txt
