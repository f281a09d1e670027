#!/usr/bin/env bash
# Run Switchyard locally: write a .env on the first run (scripts/ensure_env.sh), migrate, create
# an admin user when DJANGO_SUPERUSER_PASSWORD is given, then run the web server and one django-q2
# cluster together. Ctrl-C, or SIGINT/SIGTERM/SIGHUP to this script, stops both; when either
# exits, the other is stopped too.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}
# A local run: DEBUG on unless asked otherwise, whatever the .env says.
export DEBUG=${DEBUG:-true}

if ! "$BIN/python" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
  echo "Port $PORT is taken (another make run?). Stop that, or choose another: PORT=8080 make run" >&2
  exit 1
fi

BIN=$BIN bash scripts/ensure_env.sh
"$BIN/python" manage.py migrate --noinput

if ! "$BIN/python" manage.py shell --no-imports -c \
  "from django.contrib.auth import get_user_model; import sys; sys.exit(0 if get_user_model().objects.filter(is_superuser=True).exists() else 1)"; then
  if [ -n "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
    DJANGO_SUPERUSER_USERNAME=${DJANGO_SUPERUSER_USERNAME:-admin} DJANGO_SUPERUSER_EMAIL=${DJANGO_SUPERUSER_EMAIL:-admin@localhost} \
      "$BIN/python" manage.py createsuperuser --noinput
    echo "Created superuser '${DJANGO_SUPERUSER_USERNAME:-admin}' with DJANGO_SUPERUSER_PASSWORD."
  else
    LOGIN_HINT="No admin user yet. In another terminal: $BIN/python manage.py createsuperuser
  (or run: DJANGO_SUPERUSER_PASSWORD=... make run  to create 'admin' automatically)"
  fi
fi

# Each server runs in its own process group, so Ctrl-C reaches only this script, which passes
# exactly one SIGINT to each: a second SIGINT while django-q2 is stopping can leave it hung,
# and one while the web server exits prints a traceback. A non-interactive shell would also
# start them with SIGINT ignored (Python then never raises KeyboardInterrupt), and a script
# started that way could not undo it with `trap - INT`: Python sets SIGINT back itself.
start() {
  "$BIN/python" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$BIN/python" manage.py "$@" &
}
stop() {
  trap '' INT TERM HUP
  local groups=()
  for pid in $WEB $WORKER; do groups+=("-$pid"); done
  [ ${#groups[@]} -gt 0 ] || return 0
  # SIGINT, not SIGTERM: django-q2 stops at once on SIGINT but waits out its workers on SIGTERM.
  kill -INT $WEB $WORKER 2>/dev/null || true
  local deadline=$((SECONDS + 30)) group
  for group in "${groups[@]}"; do
    while kill -0 -- "$group" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.1
    done
  done
  if kill -0 -- "${groups[@]}" 2>/dev/null; then
    echo "Still running after 30 s: killing the web server and the worker." >&2
    kill -KILL -- "${groups[@]}" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
}
WEB='' WORKER=''
trap 'stop; exit 0' INT TERM HUP
set -m
start runserver "127.0.0.1:$PORT" --noreload
WEB=$!
start qcluster
WORKER=$!
set +m

cat <<MSG

  Switchyard is running.
  Admin:     http://127.0.0.1:$PORT/admin/
  Segment:   http://127.0.0.1:$PORT/v1/  (create a key: $BIN/python manage.py create_integration --kind segment --name "My source")
  API docs:  http://127.0.0.1:$PORT/api/docs/
  Health:    http://127.0.0.1:$PORT/healthz
  ${LOGIN_HINT:-Log in with your admin user.}
  Ctrl-C stops the web server and the worker.

MSG
status=0
wait -n "$WEB" "$WORKER" || status=$?
stop
exit "$status"
