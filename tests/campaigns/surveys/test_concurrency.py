"""Two answers to one survey at the same moment (the page's script and its button, or a
scanner and a person) make one response: the dispatch's row lock orders them. PostgreSQL only:
SQLite runs one writer at a time anyway."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from campaigns.surveys.models import SurveyDispatch, SurveyResponse
from campaigns.surveys.responses import response_record
from common import clock
from tests.campaigns.factories import make_contact
from tests.campaigns.surveys.conftest import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_answers_make_one_response():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers")
    campaign = make_campaign()
    dispatches = []
    for n in range(8):
        contact = make_contact(f"c{n}@example.com")
        dispatches.append(
            SurveyDispatch.objects.create(
                campaign=campaign,
                contact=contact,
                trigger=f"event:{n}",
                event={"name": "Order Completed"},
                event_at=clock.now(),
                status="sent",
                due_at=clock.now(),
                sent_at=clock.now(),
            )
        )
    errors = []
    start = threading.Barrier(4)

    def answer(dispatch, score, comment):
        try:
            start.wait()
            response_record(dispatch_id=dispatch.pk, score=score, comment=comment)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    for dispatch in dispatches:
        start.reset()
        threads = [
            threading.Thread(target=answer, args=(dispatch, score, comment))
            for score, comment in ((9, None), (9, "Great"), (3, None), (10, "Fine"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert SurveyResponse.objects.count() == len(dispatches)
    from campaigns.surveys.stats import figures

    assert figures(campaign).responses == len(dispatches)
    assert sum(figures(campaign).distribution.values()) == len(dispatches)
