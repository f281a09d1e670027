"""End to end, with real processes: a django-q2 cluster (its own process, the production
settings) sends through a real SMTP server on 127.0.0.1, and the unsubscribe link in the email
is posted to a live web server over HTTP.

PostgreSQL only: the cluster is another process and shares the test database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from campaigns.email.models import EmailSend, SendStatus
from campaigns.email.services import email_send_schedule
from common import clock
from contacts.models import Contact
from tests.campaigns.factories import make_contact, make_template

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("a cluster process needs a shared database (PostgreSQL); SQLite tests run in memory")


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def cluster(tmp_path, smtp_server, live_server):
    """`manage.py qcluster` with the production settings (the engine alone: tests/campaigns/
    live_settings.py), mailing the local SMTP server, its links pointing at the live server."""
    log = open(tmp_path / "qcluster.log", "wb")  # noqa: SIM115 - closed with the process
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.campaigns.live_settings",
        "ENV_FILE": "",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url(),
        "Q_BROKER": "orm",
        "Q_WORKERS": "1",
        "EMAIL_URL": smtp_server.url,
        "DEFAULT_FROM_EMAIL": "Switchyard <hello@switchyard.test>",
        "SITE_URL": live_server.url,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.log_path = Path(log.name)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log.close()


def wait_for(predicate, process, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    sends = list(EmailSend.objects.values("status", "reason", "last_error", "attempts", "next_attempt_at"))
    log = process.log_path.read_text(errors="replace")[-3000:]
    pytest.fail(f"{what} did not happen; the sends: {sends}; the cluster said:\n{log}")


def test_a_scheduled_email_arrives_once_and_its_one_click_link_unsubscribes(cluster, smtp_server, live_server):
    contact = make_contact("reader@example.com", first_name="Ada", properties={"favoriteColor": "teal"})
    template = make_template(name="welcome")
    for _ in range(2):  # the same send scheduled twice: one row, one email
        email_send_schedule(
            contact=contact,
            template=template,
            purpose="autoresponder",
            due_at=clock.now(),
            key=f"e2e:{contact.pk}:welcome",
            event={"name": "Signed Up", "properties": {"order_id": "W-1"}},
        )
    assert EmailSend.objects.count() == 1
    wait_for(lambda: smtp_server.messages, cluster, "the email's arrival")
    time.sleep(2)  # time for a second email, were one ever sent
    (received,) = smtp_server.messages
    send = EmailSend.objects.get()
    wait_for(lambda: EmailSend.objects.get().status == SendStatus.SENT, cluster, "the send's status")

    assert received.rcpt_tos == ["reader@example.com"]
    assert received.mail_from == "hello@switchyard.test"
    assert received.header("Subject") == "Hello Ada"
    assert received.header("From") == "Switchyard <hello@switchyard.test>"
    assert received.header("Message-ID") == EmailSend.objects.get().message_id
    assert received.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    https_url, mailto = re.findall(r"<([^>]+)>", received.header("List-Unsubscribe"))
    assert https_url.startswith(f"{live_server.url}/email/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@switchyard.test?subject=unsubscribe%20")
    assert "Your favourite colour is teal." in received.part("text/html")
    assert https_url in received.part("text/html") and https_url in received.part("text/plain")
    print("\n".join(f"{name}: {value}" for name, value in received.message.items()))  # shown with -s

    # A link scanner's GET changes nothing.
    with urllib.request.urlopen(https_url) as page:
        assert page.status == 200
    assert Contact.objects.get(pk=contact.pk).subscribed is True
    # The mail provider's one-click POST: no login, 200, no redirect.
    request = urllib.request.Request(
        https_url,
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
        assert answer.url == https_url
    contact = Contact.objects.get(pk=contact.pk)
    assert contact.subscribed is False
    assert contact.subscription_reason == f"unsubscribed by email (one-click, send {send.pk})"
