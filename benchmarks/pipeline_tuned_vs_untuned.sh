#!/bin/bash
# MovieLens-1M through benchmarks/pipeline.py: the untuned then the tuned full build of `auto`, each on a fresh
# SQLite database (issue 17: tuned <= 3x untuned, <= 120 s). Usage: benchmarks/pipeline_tuned_vs_untuned.sh . OUTDIR
set -u
REPO=$1; OUT=$2; mkdir -p $OUT
cd $REPO
for mode in untuned tuned; do
  if [ $mode = untuned ]; then P='{"tune": false}'; else P='{}'; fi
  rm -rf $OUT/$mode; mkdir -p $OUT/$mode
  echo "== $mode $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  BRE_PIPELINE_ALGORITHM_PARAMS="$P" BRE_PIPELINE_SQLITE_PATH=$OUT/$mode/db.sqlite3 \
    .venv/bin/python benchmarks/pipeline.py --data movielens --backends sqlite --workers 2 \
    --refresh-events 0 --refresh-burst 0 --out - > $OUT/$mode/out.md 2> $OUT/$mode/err.log
  echo "   rc $? $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
done
