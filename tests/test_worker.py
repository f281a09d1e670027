"""A real django-q2 cluster drains what the endpoints store: ORM broker and Redis broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from contacts.models import Contact
from integrations.models import InboxMessage

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def cluster(tmp_path):
    """Start `manage.py qcluster` against the test database with the given broker."""
    processes = []

    def start(broker: str) -> subprocess.Popen:
        log = open(tmp_path / "qcluster.log", "wb")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "DATABASE_URL": database_url(), "Q_BROKER": broker, "Q_WORKERS": "1"}
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log_path = tmp_path / "qcluster.log"
        processes.append(process)
        return process

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def post_identify(segment_client, user_id: str):
    response = segment_client.post(
        "/v1/identify", {"userId": user_id, "traits": {"email": f"{user_id}@example.com", "plan": "team"}}
    )
    assert response.status_code == 200, response.content


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["orm", "redis://127.0.0.1:6379/15"])
def test_cluster_drains_what_the_endpoint_stored(broker, cluster, segment, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a shared database (PostgreSQL); SQLite tests run in memory")
    if broker.startswith("redis"):
        if not redis_available():
            pytest.skip("no Redis on 127.0.0.1:6379")
        import redis

        redis.Redis.from_url(broker).flushdb()
    client, _integration = segment
    process = cluster(broker)
    post_identify(client, f"worker-{broker[:5]}")
    if broker.startswith("redis"):
        # This test process was configured with the ORM broker at import; queue the drain
        # through Redis the way a web node configured with Q_BROKER=redis does.
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from integrations.inbound.store import drain_soon; drain_soon()",
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), "Q_BROKER": broker},
            check=True,
            capture_output=True,
            timeout=60,
        )

    drained = wait_for(lambda: InboxMessage.objects.filter(status="processed").count() == 1)
    if not drained:
        output = Path(process.log_path).read_text(errors="replace")
        pytest.fail(f"the cluster did not drain the message; its output:\n{output[-3000:]}")
    contact = Contact.objects.get()
    assert contact.properties == {"plan": "team"}
