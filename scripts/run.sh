#!/usr/bin/env bash
# Start the web server and a django-q2 cluster together; stop both on Ctrl-C or when either exits.
set -euo pipefail
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}

if ! DEBUG=${DEBUG:-true} "$BIN/python" manage.py shell -c \
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

"$BIN/python" manage.py runserver "127.0.0.1:$PORT" --noreload &
WEB=$!
"$BIN/python" manage.py qcluster &
WORKER=$!
trap 'kill -INT $WEB $WORKER 2>/dev/null; wait 2>/dev/null; exit 0' INT TERM
cat <<MSG

  Switchyard is running.
  Admin:     http://127.0.0.1:$PORT/admin/
  Segment:   http://127.0.0.1:$PORT/v1/  (create a key: $BIN/python manage.py create_integration --kind segment --name "My source")
  API docs:  http://127.0.0.1:$PORT/api/docs/
  ${LOGIN_HINT:-Log in with your admin user.}
  Ctrl-C stops the web server and the worker.

MSG
wait -n $WEB $WORKER
kill -INT $WEB $WORKER 2>/dev/null || true
wait 2>/dev/null || true
