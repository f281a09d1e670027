"""create_integration: one JSON object out, a working key, settings checked."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.models import InboxMessage, Integration
from tests.conftest import SegmentClient, make_integration

pytestmark = pytest.mark.django_db


def create(*args: str) -> dict:
    out = StringIO()
    call_command("create_integration", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, out.getvalue()
    return json.loads(lines[0])


def test_prints_one_json_object_with_a_working_key():
    result = create("--kind", "segment", "--name", "Main source")
    assert set(result) == {"id", "kind", "name", "api_key"}
    integration = Integration.objects.get(pk=result["id"])
    assert (result["kind"], result["name"]) == ("segment", "Main source")
    assert (integration.kind, integration.name, integration.enabled) == ("segment", "Main source", True)
    public_id, dot, secret = result["api_key"].partition(".")
    assert dot and public_id and len(secret) >= 32
    # The secret is not stored in clear.
    assert secret not in json.dumps(list(integration.api_keys.values()), default=str)
    response = SegmentClient(result["api_key"]).post("/v1/identify", {"userId": "u1"})
    assert response.json() == {"success": True}
    assert InboxMessage.objects.get().integration == integration


@pytest.mark.parametrize("kind", ["segment", "loops", "retently", "promoter", "refersion"])
def test_every_inbound_kind_gets_a_key(kind):
    result = create("--kind", kind, "--name", kind)
    assert result["api_key"]
    assert SegmentClient(result["api_key"]).post("/v1/track", {"userId": "u1", "event": "E"}).status_code == 200


def test_segment_source_has_no_key_and_takes_write_key_and_endpoint():
    result = create(
        "--kind",
        "segment_source",
        "--name",
        "Out",
        "--set",
        "write_key=wk_123",
        "--set",
        "endpoint=http://127.0.0.1:9/",
    )
    assert result["api_key"] is None
    integration = Integration.objects.get(pk=result["id"])
    assert integration.settings["write_key"] == "wk_123"
    assert integration.settings["endpoint"].startswith("http://127.0.0.1:9")
    assert not integration.api_keys.exists()


def test_promoter_defaults_to_50000_a_day_and_others_to_no_cap():
    promoter = Integration.objects.get(pk=create("--kind", "promoter", "--name", "P")["id"])
    assert promoter.daily_cap == 50000
    segment = Integration.objects.get(pk=create("--kind", "segment", "--name", "S")["id"])
    assert segment.daily_cap is None


def test_daily_cap_and_shared_secret_are_set():
    result = create("--kind", "promoter", "--name", "P", "--set", "daily_cap=10", "--set", "shared_secret=abc")
    integration = Integration.objects.get(pk=result["id"])
    assert (integration.daily_cap, integration.shared_secret) == (10, "abc")
    # The secret is enforced right away: unsigned requests are refused.
    assert SegmentClient(result["api_key"]).post("/v1/identify", {"userId": "u1"}).status_code == 401


def test_a_value_may_contain_an_equals_sign():
    result = create("--kind", "segment", "--name", "S", "--set", "shared_secret=a=b=c")
    assert Integration.objects.get(pk=result["id"]).shared_secret == "a=b=c"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "nonsense"], "--set takes key=value, not 'nonsense'"),
        (["--set", "=x"], "--set takes key=value"),
        (["--set", "colour=blue"], "segment has no setting 'colour'; it takes: daily_cap, shared_secret"),
        (["--set", "daily_cap=lots"], "daily_cap must be a whole number, not 'lots'"),
        (["--set", "daily_cap=0"], "daily_cap must be at least 1"),
        (["--set", "daily_cap=-5"], "daily_cap must be at least 1"),
    ],
)
def test_bad_settings_are_a_clear_command_error(args, expected):
    with pytest.raises(CommandError) as caught:
        call_command("create_integration", "--kind", "segment", "--name", "S", *args, stdout=StringIO())
    assert str(caught.value).startswith(expected), str(caught.value)
    assert not Integration.objects.exists()


def test_outbound_kind_refuses_inbound_settings():
    with pytest.raises(CommandError, match="daily_cap applies to inbound kinds only"):
        call_command(
            "create_integration", "--kind", "segment_source", "--name", "O", "--set", "daily_cap=5", stdout=StringIO()
        )
    with pytest.raises(CommandError, match="segment_source has no setting 'shared'"):
        call_command(
            "create_integration", "--kind", "segment_source", "--name", "O", "--set", "shared=5", stdout=StringIO()
        )


def test_unknown_kind_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_integration", "--kind", "mailchimp", "--name", "M", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_from_the_command_line_with_and_without_set(capsys):
    """Through argv, as a user runs it: `--set` used to clash with Django's own `--settings`."""
    from integrations.management.commands.create_integration import Command

    Command().run_from_argv(
        [
            "manage.py",
            "create_integration",
            "--kind",
            "segment_source",
            "--name",
            "Out",
            "--set",
            "write_key=wk",
            "--set",
            "endpoint=http://127.0.0.1:9",
        ]
    )
    Command().run_from_argv(["manage.py", "create_integration", "--kind", "promoter", "--name", "P"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    out, promoter = (json.loads(line) for line in lines)
    assert (out["kind"], out["api_key"]) == ("segment_source", None)
    assert Integration.objects.get(pk=out["id"]).settings["write_key"] == "wk"
    assert Integration.objects.get(pk=promoter["id"]).daily_cap == 50000
    assert SegmentClient(promoter["api_key"]).post("/v1/identify", {"userId": "u1"}).status_code == 200


# --- process_inbox ------------------------------------------------------------------------------


def test_process_inbox_drains_in_the_foreground_and_ends_with_the_counts(db):
    _, key = make_integration("segment")
    SegmentClient(key).post(
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "u1", "traits": {"email": "u1@x.io"}},
                {"type": "track", "userId": "u1", "event": "Paid"},
                {"type": "group", "userId": "u1", "groupId": "g1"},
                {"type": "page", "anonymousId": "visitor", "name": "Home"},
            ]
        },
    )
    out = StringIO()
    call_command("process_inbox", stdout=out)
    # One chunk per lane holding rows on PostgreSQL, one in all on SQLite.
    assert re.fullmatch(
        r"processed 2, skipped 1, waiting 1, refused 0, failed 0 \([12] chunks\)", out.getvalue().strip()
    )
    assert not InboxMessage.objects.filter(status="pending").exists()
    out = StringIO()
    call_command("process_inbox", stdout=out)  # nothing left: safe to run again
    assert out.getvalue().strip() == "processed 0, skipped 0, waiting 0, refused 0, failed 0 (0 chunks)"


def test_process_inbox_counts_a_row_that_waited_then_applied_once(db, monkeypatch):
    """A visitor's page waits in an early chunk; the identify naming the visitor comes in a later
    chunk of the same run and wakes it. The run reports the page once, as processed."""
    from integrations import claim
    from integrations.lanes import lane_of

    # Drains start from a random lane; start from the page's, so it is applied (and waits) first.
    monkeypatch.setattr(claim.random, "randrange", lambda n: lane_of("", "visitor-9"))
    _, key = make_integration("segment")
    client = SegmentClient(key)
    client.post("/v1/page", {"anonymousId": "visitor-9", "name": "Home", "timestamp": "2024-01-01T00:00:00Z"})
    client.post("/v1/identify", {"userId": "u9", "anonymousId": "visitor-9", "traits": {"email": "v9@x.io"}})
    client.post("/v1/track", {"userId": "u1", "event": "Refused?"})  # a plain one beside them
    out = StringIO()
    call_command("process_inbox", "--chunk", "1", stdout=out)
    assert re.match(r"processed 3, skipped 0, waiting 0, refused 0, failed 0 ", out.getvalue())
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}
