"""End to end, on a live server with a real django-q2 cluster and a real SMTP server: a Segment
track leads to the loop's email arriving with its headers, the one-click POST unsubscribes
(and the loop's next step is skipped), and the same event sent twice sends once.

The web side is pytest-django's live server (this process, the test database); the cluster is
`manage.py qcluster` with the production settings module, pointed at the same database, at
the aiosmtpd server (EMAIL_URL) and at the live server for unsubscribe links (SITE_URL).
PostgreSQL only: the cluster process needs a database it can share.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from campaigns.email.models import EmailSend
from campaigns.email.services import email_template_save
from campaigns.loops.models import Enrolment, EnrolmentStatus, Loop, LoopStep
from contacts.models import Contact
from integrations.models import InboxMessage
from tests.conftest import make_integration

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def qcluster(tmp_path, live_server, smtp_server):
    """`manage.py qcluster` as production runs it, sending through the test SMTP server."""
    if connection.vendor != "postgresql":
        pytest.skip("the cluster process needs a shared database (PostgreSQL); SQLite tests run in memory")
    log_path = tmp_path / "qcluster.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENV_FILE": "",
        "DEBUG": "false",
        "DATABASE_URL": database_url(),
        "Q_BROKER": "orm",
        "Q_WORKERS": "1",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "DEFAULT_FROM_EMAIL": "Switchyard <loops@example.com>",
        "SITE_URL": live_server.url,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process.log_path = log_path
    yield process
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate, process, what: str, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    log = Path(process.log_path).read_text(errors="replace")[-4000:]
    pytest.fail(f"waited in vain for {what}; the cluster's output:\n{log}")


def test_a_segment_track_sends_the_loop_email_and_one_click_unsubscribes(live_server, smtp_server, qcluster):
    _integration, key = make_integration("segment")
    welcome = email_template_save(
        name="Welcome",
        subject="Welcome, {{ contact.first_name }}",
        html="<p>You chose {{ event.properties.plan }}.</p><p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>",
        text="",
        transactional=False,
        logo_url="",
    )
    later = email_template_save(
        name="Tips", subject="Tips", html="<p>Tips</p>", text="", transactional=False, logo_url=""
    )
    loop = Loop.objects.create(name="Welcome series", enabled=True, trigger_events=["User Registered"])
    LoopStep.objects.create(loop=loop, position=1, delay_value=0, delay_unit="minutes", template=welcome)
    LoopStep.objects.create(loop=loop, position=2, delay_value=3, delay_unit="days", template=later)

    session = requests.Session()
    session.auth = (key, "")
    identify = {"userId": "ada-1", "traits": {"email": "ada@example.com", "firstName": "Ada"}, "messageId": "id-1"}
    assert session.post(f"{live_server.url}/v1/identify", json=identify, timeout=10).status_code == 200
    wait_for(lambda: Contact.objects.filter(user_id="ada-1").exists(), qcluster, "the identify to be applied")
    track = {
        "userId": "ada-1",
        "event": "User Registered",
        "properties": {"plan": "Pro Annual"},
        "messageId": "track-1",
    }
    for _ in range(2):  # a sender's retry: the same message twice
        response = session.post(f"{live_server.url}/v1/track", json=track, timeout=10)
        assert response.status_code == 200, response.text

    [received] = wait_for(lambda: smtp_server.to("ada@example.com"), qcluster, "the loop's email")
    assert received.header("Subject") == "Welcome, Ada"
    assert "ada@example.com" in received.header("To")
    assert received.header("Message-ID")
    assert received.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    unsubscribe = received.header("List-Unsubscribe")
    assert "Pro Annual" in received.part("text/html")

    # The duplicate was acknowledged and not applied again: one enrolment, one email.
    wait_for(
        lambda: not InboxMessage.objects.exclude(status__in=["processed", "skipped"]).exists(),
        qcluster,
        "the inbox to be drained",
    )
    assert InboxMessage.objects.filter(type="track").count() == 1
    enrolment = Enrolment.objects.get()
    step2 = wait_for(
        lambda: EmailSend.objects.filter(key=enrolment.step_key(2)).first(), qcluster, "the second step to be scheduled"
    )
    assert step2.status == "scheduled"
    time.sleep(2)  # give a second email every chance to arrive: it must not
    assert len(smtp_server.to("ada@example.com")) == 1

    # One click: a POST to the HTTPS link of List-Unsubscribe, with the RFC 8058 body, no login.
    url = next(part.strip(" <>") for part in unsubscribe.split(",") if part.strip(" <>").startswith("http"))
    assert url.startswith(live_server.url)
    response = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert response.status_code == 200
    assert Contact.objects.get(user_id="ada-1").subscribed is False
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.UNSUBSCRIBED
    step2.refresh_from_db()
    assert step2.status == "skipped" and step2.reason.startswith("unsubscribed")
