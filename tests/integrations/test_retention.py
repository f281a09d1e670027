"""Inbox retention: settled rows age out, rows staff still need stay."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Schedule

from integrations.models import InboxMessage, RejectedMessage
from integrations.tasks import prune_inbox
from tests.conftest import SegmentClient, make_integration

pytestmark = pytest.mark.django_db


@pytest.fixture
def aged(db):
    _, key = make_integration("segment")
    client = SegmentClient(key)
    statuses = ["processed", "skipped", "waiting", "failed", "pending"]
    client.post(
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "u", "event": s, "messageId": f"old-{s}"} for s in statuses]},
    )
    client.post("/v1/track", {"userId": "u", "event": "processed", "messageId": "new-processed"})
    client.post("/v1/track", {"userId": "u"})  # refused: no event
    long_ago = timezone.now() - timedelta(days=31)
    for status in statuses:
        InboxMessage.objects.filter(message_id=f"old-{status}").update(status=status, received_at=long_ago)
    InboxMessage.objects.filter(message_id="new-processed").update(status="processed")
    RejectedMessage.objects.update(received_at=long_ago)
    client.post("/v1/track", {"userId": "u"})  # refused today


def test_settled_rows_older_than_the_retention_go_and_the_rest_stay(aged, settings):
    settings.INBOX_RETENTION_DAYS = 30
    assert prune_inbox() == {"inbox": 3, "rejected": 1}
    assert set(InboxMessage.objects.values_list("message_id", flat=True)) == {
        "old-failed",
        "old-pending",
        "new-processed",
    }
    assert RejectedMessage.objects.count() == 1
    assert prune_inbox() == {"inbox": 0, "rejected": 0}  # safe to run twice


def test_a_retention_of_zero_keeps_everything(aged, settings):
    settings.INBOX_RETENTION_DAYS = 0
    assert prune_inbox() == {"inbox": 0, "rejected": 0}
    assert InboxMessage.objects.count() == 6


def test_the_command_takes_days_and_ends_with_the_counts(aged):
    out = StringIO()
    call_command("prune_inbox", "--days", "40", stdout=out)
    assert out.getvalue().strip() == "deleted 0 inbox rows and 0 refused requests older than 40 days"
    call_command("prune_inbox", "--days", "7", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "deleted 3 inbox rows and 1 refused requests older than 7 days"
    with pytest.raises(CommandError):
        call_command("prune_inbox", "--days", "0")


def test_pruning_is_scheduled_hourly(db):
    schedule = Schedule.objects.get(name="prune inbox")
    assert (schedule.func, schedule.minutes, schedule.repeats) == ("integrations.tasks.prune_inbox", 60, -1)


def test_an_imported_archive_is_kept_as_long_as_anything_received_today(tmp_path, settings):
    """An archive from 2019 is dated by its own receivedAt, but stored today: the retention
    counts from today, so re-running the import still finds every line a duplicate."""
    settings.INBOX_RETENTION_DAYS = 30
    make_integration("segment")
    line = (
        '{"type": "track", "userId": "u", "event": "Old", "messageId": "arch-1", '
        '"receivedAt": "2019-02-19T23:58:54Z", "timestamp": "2019-02-19T23:58:50Z"}\n'
    )
    path = tmp_path / "archive.jsonl"
    path.write_text(line)
    call_command("import_segment", str(path), stdout=StringIO())
    InboxMessage.objects.update(status="processed")
    row = InboxMessage.objects.get()
    assert row.timestamp.year == 2019 and row.received_at > timezone.now() - timedelta(minutes=5)
    assert prune_inbox() == {"inbox": 0, "rejected": 0}
    out = StringIO()
    call_command("import_segment", str(path), stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "accepted 0, duplicate 1, rejected 0"
