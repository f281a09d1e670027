"""Typed properties: folding, types, formats, nulls, bad values, unknown traits, out of order."""

import pytest

from contacts.models import Contact, PropertyDefinition
from contacts.properties import PropertyError, coerce, infer_type, parse_date, property_name, snake_name
from integrations.models import InboxMessage
from tests.conftest import SegmentClient, make_integration


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("favoriteColor", "favoriteColor"),
        ("favorite_color", "favorite_color"),
        ("Signup Date", "Signup_Date"),
        ("HTTPStatus", "HTTPStatus"),
        ("plan-name", "plan_name"),
        ("  plan  ", "plan"),
        ("1st", None),
        ("", None),
        ("ß", None),
    ],
)
def test_property_names_are_kept_as_sent(key, name):
    """Loops matches property names exactly: favoriteColor is stored and shown as favoriteColor."""
    assert property_name(key) == name


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("favoriteColor", "favorite_color"),
        ("favorite_color", "favorite_color"),
        ("Signup Date", "signup_date"),
        ("HTTPStatus", "http_status"),
        ("plan-name", "plan_name"),
        ("1st", None),
        ("", None),
    ],
)
def test_snake_names_for_fields_and_retently(key, name):
    assert snake_name(key) == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01/30/2020", "2020-01-30"),
        ("2020-01-30", "2020-01-30"),
        ("2020-01-30T10:00:00Z", "2020-01-30T10:00:00+00:00"),
        ("Thu, 30 Jan 2020 10:00:00 +0000", "2020-01-30T10:00:00+00:00"),
    ],
)
def test_dates_in_the_three_formats(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["13/45/2020", "soon", True, "", None])
def test_not_dates(value):
    with pytest.raises(PropertyError):
        parse_date(value)


def test_coerce_each_type():
    assert coerce("42", "number") == 42
    assert coerce("4.5", "number") == 4.5
    assert coerce("yes", "boolean") is True
    assert coerce(False, "text") == "false"
    assert coerce("a, b ,c", "collection") == ["a", "b", "c"]
    assert coerce(["a", 1], "collection") == ["a", "1"]
    for value, type_ in [
        ("abc", "number"),
        (True, "number"),
        ("maybe", "boolean"),
        ({"a": 1}, "text"),
        ([{}], "collection"),
    ]:
        with pytest.raises(PropertyError):
            coerce(value, type_)


def test_infer_type():
    assert infer_type(True) == "boolean"
    assert infer_type(3) == "number"
    assert infer_type(["a"]) == "collection"
    assert infer_type("2024-05-01") == "date"
    assert infer_type("blue") == "text"
    assert infer_type({"a": 1}) is None


def test_identify_stores_typed_properties_and_defines_them(segment, drain):
    client, integration = segment
    PropertyDefinition.objects.create(name="signupDate", type="date")
    PropertyDefinition.objects.create(name="tags", type="collection")
    PropertyDefinition.objects.create(name="trial", type="boolean")
    post(
        client,
        "/v1/identify",
        {
            "userId": "u1",
            "traits": {
                "email": "u1@example.com",
                "favoriteColor": "blue",
                "favoriteNumber": 42,
                "signupDate": "Thu, 30 Jan 2020 10:00:00 +0000",
                "tags": "foo, bar, baz",
                "trial": "true",
            },
        },
    )
    drain()
    contact = Contact.objects.get()
    assert contact.properties == {
        "favoriteColor": "blue",
        "favoriteNumber": 42,
        "signupDate": "2020-01-30T10:00:00+00:00",
        "tags": ["foo", "bar", "baz"],
        "trial": True,
    }
    inferred = PropertyDefinition.objects.get(name="favoriteNumber")
    assert inferred.type == "number"
    assert integration.name in inferred.source


def test_a_value_that_does_not_fit_is_a_warning_and_not_stored(segment, drain):
    client, _ = segment
    PropertyDefinition.objects.create(name="favoriteNumber", type="number")
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u@example.com", "favoriteNumber": 7}})
    drain()
    post(client, "/v1/identify", {"userId": "u1", "traits": {"favoriteNumber": "lots", "color": "red"}})
    drain()
    row = InboxMessage.objects.order_by("-id").first()
    assert row.status == "processed"
    assert len(row.warnings) == 1
    assert "traits.favoriteNumber" in row.warnings[0]
    assert "'lots' is not a number" in row.warnings[0]
    contact = Contact.objects.get()
    assert contact.properties == {"favoriteNumber": 7, "color": "red"}


def test_null_resets_a_value(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u@example.com", "plan": "pro", "seats": 3}})
    drain()
    post(client, "/v1/identify", {"userId": "u1", "traits": {"plan": None}})
    drain()
    assert Contact.objects.get().properties == {"seats": 3}


@pytest.mark.parametrize(
    ("policy", "properties", "raw", "defined"),
    [
        ("infer", {"logins": 5}, {}, {"logins": "number"}),
        ("text", {"logins": "5"}, {}, {"logins": "text"}),
        ("raw", {}, {"logins": 5}, {}),
        ("ignore", {}, {}, {}),
    ],
)
def test_unknown_traits_policy(db, drain, policy, properties, raw, defined):
    integration, key = make_integration("segment", unknown_traits=policy)
    post(SegmentClient(key), "/v1/identify", {"userId": "u1", "traits": {"email": "u@example.com", "logins": 5}})
    drain()
    contact = Contact.objects.get()
    assert contact.properties == properties
    assert contact.raw_traits == raw
    assert dict(PropertyDefinition.objects.values_list("name", "type")) == defined


def test_objects_without_a_type_are_kept_raw_when_inferring(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "u@example.com", "company": {"name": "ACME"}}})
    drain()
    contact = Contact.objects.get()
    assert contact.raw_traits == {"company": {"name": "ACME"}}
    assert contact.properties == {}


NEWER = {
    "userId": "u1",
    "timestamp": "2024-05-02T00:00:00Z",
    "traits": {"email": "u@example.com", "plan": "pro", "firstName": "New"},
}
OLDER = {
    "userId": "u1",
    "timestamp": "2024-05-01T00:00:00Z",
    "traits": {"plan": "free", "firstName": "Old", "seats": 2},
}


def test_older_identify_in_the_same_chunk_does_not_overwrite(segment, drain):
    client, _ = segment
    post(client, "/v1/batch", {"batch": [dict(NEWER, type="identify"), dict(OLDER, type="identify")]})
    result = drain()
    assert result.processed == 2
    contact = Contact.objects.get()
    assert contact.properties == {"plan": "pro", "seats": 2}
    assert contact.first_name == "New"


def test_older_identify_in_a_later_drain_does_not_overwrite(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", NEWER)
    drain()
    post(client, "/v1/identify", OLDER)
    drain()
    contact = Contact.objects.get()
    # Older values lose where a newer one exists, and fill in what was never set.
    assert contact.properties == {"plan": "pro", "seats": 2}
    assert contact.first_name == "New"
    # An older null does not reset a newer value either.
    post(client, "/v1/identify", {"userId": "u1", "timestamp": "2024-04-01T00:00:00Z", "traits": {"plan": None}})
    drain()
    assert Contact.objects.get().properties["plan"] == "pro"


def test_name_is_split_and_long_fields_are_cut(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "traits": {"email": "u@example.com", "name": "Ada Lovelace", "phone": "9" * 100}},
    )
    drain()
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("Ada", "Lovelace")
    assert contact.phone == "9" * 64
    assert InboxMessage.objects.get().status == "processed"


def test_a_late_forward_of_an_older_identify_does_not_overwrite(segment, drain):
    """Segment forwards with its own receivedAt, sentAt and originalTimestamp. A retried older
    identify that reaches us after a newer one is still dated when it happened."""
    client, _ = segment

    def forwarded(at: str, plan: str, message_id: str) -> dict:
        return {
            "type": "identify",
            "userId": "u1",
            "messageId": message_id,
            "traits": {"plan": plan},
            "originalTimestamp": at,
            "sentAt": at,
            "receivedAt": at,
            "timestamp": at,
        }

    post(client, "/v1/destination", forwarded("2024-05-02T00:00:00Z", "new", "m-new"))
    drain()
    post(client, "/v1/destination", forwarded("2024-05-01T00:00:00Z", "old", "m-old"))
    drain()
    assert Contact.objects.get().properties == {"plan": "new"}
