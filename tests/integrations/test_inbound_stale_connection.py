"""A web process keeps its database connection between requests (CONN_MAX_AGE). When PostgreSQL
restarts, or ends its backends, the next request must notice and reconnect, not answer 503.

The server is a real gunicorn process on the test database: Django's live server and test client
both open a fresh connection (or skip the per-request health check), so neither could show it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from integrations.models import InboxMessage
from tests.conftest import make_integration

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture
def server():
    """One gunicorn worker (one thread, so one kept connection), keys remembered for the test."""
    if connection.vendor != "postgresql":
        pytest.skip("kept connections and pg_terminate_backend are PostgreSQL's")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENV_FILE": "",
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "600",
        "API_KEY_CACHE_SECONDS": "600",
        "SECRET_KEY": "stale-connection-test-secret-key-0123456789abcdef",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "config.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"gunicorn exited with {proc.returncode}"
            try:
                request(port, "OPTIONS", "/v1/track")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_first_request_after_the_database_ended_its_connections_is_stored(server):
    _, key = make_integration("segment", name="stale")
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
    }

    def track(message_id: str) -> int:
        body = json.dumps({"userId": "u1", "event": "E", "messageId": message_id}).encode()
        return request(server, "POST", "/v1/track", body, headers)

    # The first call looks the key up; the second takes it from the key memory, so the inbox
    # store is the first statement of its request, on the connection kept from the first.
    assert track("warm-1") == 200
    assert track("warm-2") == 200

    # As a PostgreSQL restart does: end every backend of this database but the test's own,
    # waiting (up to 5 s each) until each has gone.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        ended = cursor.fetchall()
    assert ended and all(done for _, done in ended)

    assert track("after-restart") == 200
    assert InboxMessage.objects.filter(message_id="after-restart").exists()
    assert track("and-after") == 200
    assert set(InboxMessage.objects.values_list("message_id", flat=True)) == {
        "warm-1",
        "warm-2",
        "after-restart",
        "and-after",
    }
