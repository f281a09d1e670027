"""import_segment: a JSON-lines backfill through the same checks, inbox and drain as the API."""

from __future__ import annotations

import gzip
import io
import json
import sys
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from contacts.models import Contact, ContactEvent
from integrations.models import DailyUsage, InboxMessage, InboxStatus, RejectedMessage
from tests.conftest import make_integration


def identify(n: int, **extra) -> dict:
    return {
        "type": "identify",
        "messageId": f"import-identify-{n}",
        "userId": f"user-{n}",
        "traits": {"email": f"Person{n}@Example.com", "plan": "pro", "seats": n},
        "timestamp": "2024-03-01T10:00:00Z",
        **extra,
    }


def track(n: int) -> dict:
    return {
        "type": "track",
        "messageId": f"import-track-{n}",
        "userId": f"user-{n}",
        "event": "Order Completed",
        "properties": {"total": 10 * n},
        "timestamp": "2024-03-01T10:05:00Z",
    }


def jsonl(messages) -> bytes:
    return b"".join((m if isinstance(m, bytes) else json.dumps(m).encode()) + b"\n" for m in messages)


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_segment", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def integration(db):
    integration, _key = make_integration("segment", name="backfill")
    return integration


def test_plain_file_is_stored_in_the_inbox(integration, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1), track(1), identify(2)]))

    out, _ = run(path)

    assert out.strip().splitlines()[-1] == "accepted 3, duplicate 0, rejected 0"
    rows = InboxMessage.objects.filter(integration=integration).order_by("message_id")
    assert [r.message_id for r in rows] == ["import-identify-1", "import-identify-2", "import-track-1"]
    assert {r.status for r in rows} == {InboxStatus.PENDING}
    track_row = rows.get(message_id="import-track-1")
    assert (track_row.type, track_row.user_id, track_row.event) == ("track", "user-1", "Order Completed")
    assert rows.get(message_id="import-identify-1").email == "person1@example.com"
    # A backfill is counted as messages, not against the daily cap of requests.
    usage = DailyUsage.objects.get(integration=integration)
    assert (usage.requests, usage.messages) == (0, 3)


def test_gzip_file(integration, tmp_path):
    path = tmp_path / "export.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl([identify(n) for n in range(1, 2501)])))

    out, _ = run(path, "--integration", integration.pk)

    assert out.strip().splitlines()[-1] == "accepted 2500, duplicate 0, rejected 0"
    assert InboxMessage.objects.filter(integration=integration).count() == 2500


def test_stdin(integration, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(jsonl([identify(1), track(1)]))))

    out, _ = run("-")

    assert out.strip().splitlines()[-1] == "accepted 2, duplicate 0, rejected 0"
    assert InboxMessage.objects.filter(integration=integration).count() == 2


def test_gzipped_stdin(integration, monkeypatch):
    data = gzip.compress(jsonl([identify(1), track(1)]))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    out, _ = run("-")

    assert out.strip().splitlines()[-1] == "accepted 2, duplicate 0, rejected 0"


def test_second_run_adds_nothing(integration, tmp_path):
    path = tmp_path / "export.jsonl"
    # The last line repeats the first one's messageId: a duplicate within the file too.
    path.write_bytes(jsonl([identify(1), track(1), identify(2), identify(1)]))

    first, _ = run(path, "--batch", 2)
    second, _ = run(path)

    assert first.strip().splitlines()[-1] == "accepted 3, duplicate 1, rejected 0"
    assert second.strip().splitlines()[-1] == "accepted 0, duplicate 4, rejected 0"
    assert InboxMessage.objects.filter(integration=integration).count() == 3


def test_messages_without_message_id_are_idempotent_too(integration, tmp_path):
    message = {"type": "track", "userId": "u1", "event": "Signed Up", "timestamp": "2024-01-01T00:00:00Z"}
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([message]))

    run(path)
    out, _ = run(path)

    assert out.strip().splitlines()[-1] == "accepted 0, duplicate 1, rejected 0"
    assert InboxMessage.objects.get().message_id.startswith("sy-")


def test_rejected_lines_are_reported_with_line_numbers_and_recorded(integration, tmp_path):
    lines = [
        identify(1),  # 1
        b"{not json",  # 2
        {"type": "track", "userId": "u1"},  # 3: no event
        b"",  # 4: blank, ignored
        {"type": "identify", "traits": {}},  # 5: no userId or anonymousId
        b'["an", "array"]',  # 6
        {"type": "identify", "userId": "u9", "traits": {"blob": "x" * 40_000}},  # 7: over 32 KB
        b"\xff\xfe not utf-8",  # 8
        {"type": "explode", "userId": "u1"},  # 9
        track(1),  # 10
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl(lines))

    out, err = run(path)

    assert out.strip().splitlines()[-1] == "accepted 2, duplicate 0, rejected 7 (lines 2, 3, 5, 6, 7, 8, 9)"
    assert "line 2: not valid JSON" in err
    assert "line 3: event is required" in err
    rejected = {r.index: r for r in RejectedMessage.objects.filter(integration=integration)}
    assert sorted(rejected) == [2, 3, 5, 6, 7, 8, 9]
    assert {r.path for r in rejected.values()} == {"import"}
    assert rejected[2].code == "invalid_json" and rejected[2].body.startswith("{not json")
    assert rejected[3].code == "missing_field" and "event" in rejected[3].message
    assert rejected[5].code == "missing_field" and "userId or anonymousId" in rejected[5].message
    assert rejected[6].code == "invalid_body"
    assert (rejected[7].code, rejected[7].status_code) == ("too_large", 413)
    assert rejected[8].code == "invalid_json"
    assert rejected[9].code == "invalid_field"
    assert InboxMessage.objects.count() == 2


def test_only_the_first_twenty_rejected_lines_are_listed(integration, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([b"nope"] * 25))

    out, _ = run(path)

    summary = out.strip().splitlines()[-1]
    assert summary == "accepted 0, duplicate 0, rejected 25 (lines " + ", ".join(map(str, range(1, 21))) + ", …)"
    assert RejectedMessage.objects.filter(path="import").count() == 25


def test_a_huge_line_without_newline_is_rejected_not_loaded(integration, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1)]) + b'{"type": "identify", "userId": "' + b"x" * 5_000_000 + b'"}')

    out, _ = run(path)

    assert out.strip().splitlines()[-1] == "accepted 1, duplicate 0, rejected 1 (lines 2)"
    assert RejectedMessage.objects.get().code == "too_large"


def test_imported_messages_apply_after_a_drain(integration, tmp_path, drain):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1), track(1), identify(2)]))
    run(path)
    assert not Contact.objects.exists()

    drain()

    contact = Contact.objects.get(user_id="user-1")
    assert contact.email == "person1@example.com"
    assert contact.properties["plan"] == "pro"
    assert ContactEvent.objects.filter(contact=contact, name="Order Completed").count() == 1
    assert Contact.objects.filter(user_id="user-2").exists()
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {InboxStatus.PROCESSED}


def test_process_flag_drains_in_the_foreground(integration, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1), track(1)]))

    out, _ = run(path, "--process")

    lines = out.strip().splitlines()
    assert lines[-2] == "processed 2, skipped 0, waiting 0, failed 0"
    assert lines[-1] == "accepted 2, duplicate 0, rejected 0"
    assert Contact.objects.filter(user_id="user-1", email="person1@example.com").exists()


def test_historical_messages_keep_their_received_at_for_the_clock_skew_rule(integration, tmp_path):
    # A Segment archive line: the client clock was 10 minutes fast.
    message = identify(
        1,
        timestamp=None,
        originalTimestamp="2023-05-01T12:10:00Z",
        sentAt="2023-05-01T12:10:05Z",
        receivedAt="2023-05-01T12:00:05Z",
    )
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([message]))

    run(path)

    row = InboxMessage.objects.get()
    assert row.timestamp == datetime(2023, 5, 1, 12, 0, tzinfo=UTC)
    assert row.payload["receivedAt"] == "2023-05-01T12:00:05Z"


def test_integration_must_be_chosen_when_there_are_several(integration, tmp_path):
    other, _ = make_integration("loops", name="loops")
    make_integration("segment_source", name="outbound", write_key="wk", endpoint="http://127.0.0.1:1")
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1)]))

    with pytest.raises(CommandError, match="choose one with --integration"):
        run(path)

    out, _ = run(path, "--integration", other.pk)
    assert out.strip().splitlines()[-1] == "accepted 1, duplicate 0, rejected 0"
    assert InboxMessage.objects.get().integration == other


def test_no_inbound_integration_is_a_clear_error(db, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1)]))

    with pytest.raises(CommandError, match="no enabled inbound integration"):
        run(path)


def test_outbound_or_unknown_integration_is_refused(integration, tmp_path):
    outbound, _ = make_integration("segment_source", name="outbound", write_key="wk", endpoint="http://127.0.0.1:1")
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1)]))

    with pytest.raises(CommandError, match="outbound"):
        run(path, "--integration", outbound.pk)
    with pytest.raises(CommandError, match="no integration with id 999999"):
        run(path, "--integration", 999999)


def test_missing_file_is_a_clear_error(integration, tmp_path):
    with pytest.raises(CommandError, match="cannot open"):
        run(tmp_path / "nope.jsonl")


def test_values_the_database_cannot_store_are_rejected_alone(integration, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(
        jsonl(
            [
                identify(1),
                b'{"type": "identify", "userId": "nul", "traits": {"x": "a\\u0000b"}}',
                b'{"type": "identify", "userId": "raw-nul"}\x00',
                identify(2),
            ]
        )
    )

    out, _ = run(path)

    assert out.strip().splitlines()[-1] == "accepted 2, duplicate 0, rejected 2 (lines 2, 3)"
    assert sorted(InboxMessage.objects.values_list("user_id", flat=True)) == ["user-1", "user-2"]
    assert sorted(RejectedMessage.objects.values_list("index", flat=True)) == [2, 3]


def test_a_line_nested_too_deeply_is_rejected_alone(integration, tmp_path):
    deep: list = []
    for _ in range(300):
        deep = [deep]
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl([identify(1), {**track(1), "properties": {"d": deep}}, identify(2)]))
    out, err = run(path)
    assert out.strip().splitlines()[-1] == "accepted 2, duplicate 0, rejected 1 (lines 2)"
    assert "too_deep" in err
    assert InboxMessage.objects.count() == 2
