#!/usr/bin/env bash
# `make run`: migrate, load the demo data (first time only), start a Celery worker and beat,
# complete a full build through the worker, then serve http://127.0.0.1:8000.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PY=$BIN/python
mkdir -p var/log
HOST=${BRE_HOST:-127.0.0.1}
PORT=${BRE_PORT:-8000}

pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "==> Stopping the worker and beat"
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 20); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.5
    done
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  fi
}
trap cleanup INT TERM EXIT

echo "==> Database: ${DATABASE_URL:-sqlite (var/db.sqlite3)}; broker: ${CELERY_BROKER_URL:-filesystem (var/celery)}"
echo "==> Applying migrations"
$PY manage.py migrate --no-input -v 1 | grep -v "^  No migrations" || true

echo "==> Loading the demo data (first time only)"
$PY manage.py load_demo_data

echo "==> Starting a Celery worker (2 processes) and beat; logs in var/log/"
# Each in its own session (setsid), so that stopping it stops its pool processes too.
setsid $BIN/celery -A bre_site worker -c 2 --loglevel=INFO --logfile var/log/worker.log >/dev/null 2>&1 &
pids+=($!)
setsid $BIN/celery -A bre_site beat --loglevel=INFO --logfile var/log/beat.log \
  --scheduler django_celery_beat.schedulers:DatabaseScheduler >/dev/null 2>&1 &
pids+=($!)

status=$($PY manage.py recommendations status)
if grep -q "^Active build: none" <<<"$status"; then
  echo "==> Queueing a full build and waiting for the worker to finish it"
  $PY manage.py recommendations build --wait --timeout 900
else
  echo "==> Reusing the active build (run 'make build' or the admin's 'Build now' to rebuild):"
  head -1 <<<"$status"
fi

cat <<MSG

==> BRE is up: http://$HOST:$PORT/
    Demo reader:  demo / demo-reader     (a real reader's history from the data sets)
    Editor/admin: admin / admin-editor   (http://$HOST:$PORT/admin/)
    API docs:     http://$HOST:$PORT/api/docs/
    Press Ctrl-C to stop the server, the worker and beat.

MSG
$PY manage.py runserver "$HOST:$PORT" --noreload
