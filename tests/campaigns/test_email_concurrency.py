"""Two workers at once, each with its own database connection and SMTP connection: every send
goes exactly once, and the rate limit holds across them.

PostgreSQL only: the workers are threads with their own connections, and what they claim must
be committed for the other to see (transactional_db).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from campaigns.email.models import EmailSend, SendStatus
from common.workqueue.run import run_due
from tests.campaigns.factories import make_contact, make_template, schedule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_caller_checks")]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent workers need PostgreSQL (SKIP LOCKED, a connection per thread)")


def in_threads(count: int, target) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = target(n)
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_two_workers_send_every_email_exactly_once(use_smtp, frozen):
    from common.workqueue.registry import get_type

    get_type("email_send").batch_size = 20
    try:
        template = make_template()
        for n in range(200):
            schedule(make_contact(f"w{n}@example.com"), template)
        results = in_threads(2, lambda n: run_due(types=["email_send"], max_seconds=120)["email_send"])
    finally:
        get_type("email_send").batch_size = 100
    assert sum(r["done"] for r in results) == 200
    assert all(r["done"] > 0 for r in results), results  # both took part
    received = Counter(m.rcpt_tos[0] for m in use_smtp.messages)
    assert len(received) == 200 and set(received.values()) == {1}
    assert EmailSend.objects.filter(status=SendStatus.SENT).count() == 200
    assert use_smtp.sessions >= 2  # each worker its own connection


def test_the_rate_limit_holds_across_workers(use_smtp, frozen, settings):
    from common.workqueue.registry import get_type

    settings.EMAIL_RATE_LIMIT = "25/minute"
    get_type("email_send").batch_size = 10
    try:
        template = make_template()
        for n in range(60):
            schedule(make_contact(f"q{n}@example.com"), template)
        in_threads(2, lambda n: run_due(types=["email_send"], max_seconds=120))
        assert len(use_smtp.messages) == 25
        frozen.advance(60)
        in_threads(2, lambda n: run_due(types=["email_send"], max_seconds=120))
        assert len(use_smtp.messages) == 50
        frozen.advance(60)
        in_threads(2, lambda n: run_due(types=["email_send"], max_seconds=120))
    finally:
        get_type("email_send").batch_size = 100
    received = Counter(m.rcpt_tos[0] for m in use_smtp.messages)
    assert len(received) == 60 and set(received.values()) == {1}
