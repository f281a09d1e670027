"""Settings, health and schedules: what an operator relies on when deploying."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django_q.models import Schedule

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT")
    }
    # No .env unless a test names one: a developer's own (`make run` writes one) must not
    # turn the production checks below into a local DEBUG run.
    environment["ENV_FILE"] = ""
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_local_env_file_lets_manage_py_run_without_environment_variables(tmp_path):
    """What `make run` leaves behind: manage.py in a plain shell reads DEBUG and SECRET_KEY from it."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"DEBUG=true\nSECRET_KEY={secrets.token_urlsafe(50)}\n")
    result = manage("check", ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stdout + result.stderr
    # The environment still wins over the file.
    result = manage("check", ENV_FILE=str(env_file), Q_BROKER="amqp://nope")
    assert result.returncode != 0
    assert "Q_BROKER" in result.stderr


def test_production_refuses_a_blank_secret_key_from_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=false\nSECRET_KEY=\n")
    result = manage("check", ENV_FILE=str(env_file))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_check_deploy():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="sy.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_queue_broker_is_refused_loudly():
    result = manage("check", DEBUG="true", Q_BROKER="amqp://nope")
    assert result.returncode != 0
    assert "Q_BROKER" in result.stderr


def test_healthz_reports_db_and_queue(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"db": "ok", "queue": "ok"}


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_naming_the_database_when_it_is_down(client):
    if connection.vendor != "postgresql":
        pytest.skip("closing an in-memory SQLite test database would destroy it")
    # Point the connection at a port nothing listens on: a real connection failure.
    connection.close()
    saved = dict(connection.settings_dict)
    try:
        connection.settings_dict["PORT"] = "1"
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    body = response.json()
    assert body["db"].startswith("error")


def test_the_root_address_leads_to_the_admin(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/", follow=True).redirect_chain[-1] == ("/admin/login/?next=/admin/", 302)


def test_drain_schedule_exists_after_migrate(db):
    schedule = Schedule.objects.get(name="drain inbox")
    assert schedule.func == "integrations.tasks.drain_inbox"
    assert schedule.repeats == -1
