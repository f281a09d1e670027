from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """200 {"db": "ok", "queue": "ok"} when healthy; 503 naming the failing part otherwise."""
    status = {"db": "ok", "queue": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001
        status["db"] = f"error: {type(error).__name__}"
    try:
        broker = settings.Q_CLUSTER
        if "redis" in broker:
            import redis

            redis.Redis.from_url(broker["redis"], socket_timeout=2).ping()
        elif status["db"] != "ok":
            status["queue"] = "error: the ORM broker needs the database"
    except Exception as error:  # noqa: BLE001
        status["queue"] = f"error: {type(error).__name__}"
    healthy = all(v == "ok" for v in status.values())
    return JsonResponse(status, status=200 if healthy else 503)
