#!/usr/bin/env bash
# Run a command again whenever it exits, as a process supervisor does (systemd Restart=always).
# Usage: scripts/reliability/supervise.sh CMD ARGS...   Each restart is logged as "supervise: exited".
# SIGTERM stops the child (a Celery warm shutdown) and then this loop.
set -u
child=0
stopping=0
on_term() { stopping=1; [ "$child" -ne 0 ] && kill -TERM "$child" 2>/dev/null; }
trap on_term TERM INT
while [ "$stopping" -eq 0 ]; do
  "$@" &
  child=$!
  wait "$child"; status=$?
  # `wait` returns early when a trapped signal arrives: wait for the child itself to finish.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
  [ "$stopping" -eq 1 ] && break
  echo "supervise: exited with status $status at $(date -u +%H:%M:%S); restarting in 1 s"
  sleep 1
done
