"""Identity: userId, then email, then anonymousId; alias merges; all through the endpoints."""

from contacts.batch import ContactBatch
from contacts.models import AudienceMembership, Contact, ContactEvent, ContactIdentity, ListMembership
from integrations.models import InboxMessage


def post(client, path, body):
    response = client.post(path, body)
    assert response.status_code == 200, response.content
    return response


def test_email_is_matched_case_insensitively_and_stored_lowercase(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "Ada@Example.COM", "plan": "pro"}})
    drain()
    post(client, "/v1/identify", {"anonymousId": "a9", "traits": {"email": "ADA@example.com", "seats": 3}})
    drain()
    contact = Contact.objects.get()
    assert contact.email == "ada@example.com"
    assert contact.properties == {"plan": "pro", "seats": 3}
    # The anonymousId seen on the second call is kept.
    assert list(contact.identities.values_list("anonymous_id", flat=True)) == ["a9"]


def test_user_id_wins_over_email(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "one@example.com"}})
    post(client, "/v1/identify", {"userId": "u2", "traits": {"email": "two@example.com"}})
    drain()
    # userId u1 with u2's email: u1 is updated, the email stays with its owner.
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "two@example.com", "plan": "x"}})
    drain()
    one = Contact.objects.get(user_id="u1")
    assert one.email == "one@example.com"
    assert one.properties == {"plan": "x"}
    row = InboxMessage.objects.order_by("-id").first()
    assert row.status == "processed"
    assert any("belongs to another contact" in w for w in row.warnings)
    assert Contact.objects.count() == 2


def test_anonymous_id_matches_a_known_contact(segment, drain):
    client, integration = segment
    post(client, "/v1/identify", {"userId": "u1", "anonymousId": "anon-1", "traits": {"email": "a@example.com"}})
    drain()
    post(client, "/v1/track", {"anonymousId": "anon-1", "event": "Viewed Pricing", "properties": {"plan": "pro"}})
    drain()
    event = ContactEvent.objects.get()
    assert event.contact.user_id == "u1"
    assert event.integration == integration


def test_anonymous_id_is_not_trusted_for_a_different_user(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u1", "anonymousId": "shared-device", "traits": {"email": "a@x.io"}})
    drain()
    post(client, "/v1/identify", {"userId": "u2", "anonymousId": "shared-device", "traits": {"plan": "two"}})
    drain()
    assert Contact.objects.get(user_id="u1").properties == {}
    assert Contact.objects.get(user_id="u2").properties == {"plan": "two"}


def test_unknown_anonymous_visitor_waits_until_identified_then_lands_on_the_contact(segment, drain):
    client, _ = segment
    post(client, "/v1/page", {"anonymousId": "visitor-1", "name": "Home", "timestamp": "2024-01-01T00:00:00Z"})
    drain()
    row = InboxMessage.objects.get()
    assert row.status == "waiting"
    assert "anonymous visitor" in row.reason
    assert not Contact.objects.exists()
    # Days later the visitor signs up: the waiting page is applied to the new contact.
    post(client, "/v1/identify", {"userId": "u1", "anonymousId": "visitor-1", "traits": {"email": "u1@x.io"}})
    result = drain()
    row.refresh_from_db()
    contact = Contact.objects.get()
    assert (row.status, row.reason, row.contact) == ("processed", "", contact)
    assert [(e.type, e.name) for e in contact.events.all()] == [("page", "Home")]
    assert result.processed == 2 and result.waiting == 0


def test_a_visitor_identified_in_the_same_chunk_is_not_left_waiting(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "anonymousId": "v2", "event": "Viewed", "timestamp": "2024-01-01T00:00:00Z"},
                {"type": "identify", "userId": "u2", "anonymousId": "v2", "timestamp": "2024-01-01T00:01:00Z"},
            ]
        },
    )
    drain()
    assert set(InboxMessage.objects.values_list("status", flat=True)) == {"processed"}
    assert Contact.objects.get(user_id="u2").events.get().name == "Viewed"


def test_alias_wakes_the_visitor_it_names(segment, drain):
    client, _ = segment
    post(client, "/v1/track", {"anonymousId": "v3", "event": "Viewed"})
    post(client, "/v1/identify", {"userId": "u3", "traits": {"email": "u3@x.io"}})
    drain()
    assert InboxMessage.objects.get(event="Viewed").status == "waiting"
    post(client, "/v1/alias", {"previousId": "v3", "userId": "u3"})
    drain()
    assert InboxMessage.objects.get(event="Viewed").status == "processed"
    assert Contact.objects.get(user_id="u3").events.get().name == "Viewed"


def test_other_visitors_keep_waiting(segment, drain):
    client, _ = segment
    post(client, "/v1/page", {"anonymousId": "v4", "name": "Home"})
    post(client, "/v1/page", {"anonymousId": "v5", "name": "Home"})
    drain()
    post(client, "/v1/identify", {"userId": "u4", "anonymousId": "v4"})
    drain()
    assert InboxMessage.objects.get(anonymous_id="v5").status == "waiting"


def test_alias_of_anonymous_id_to_user_id(segment, drain):
    client, _ = segment
    post(client, "/v1/identify", {"anonymousId": "anon-7", "traits": {"email": "visitor@example.com"}})
    drain()
    assert Contact.objects.get().user_id is None
    post(client, "/v1/alias", {"previousId": "anon-7", "userId": "u7"})
    drain()
    contact = Contact.objects.get()
    assert contact.user_id == "u7"
    assert InboxMessage.objects.get(type="alias").status == "processed"
    # Later calls with the userId land on the same contact.
    post(client, "/v1/identify", {"userId": "u7", "traits": {"plan": "pro"}})
    drain()
    assert Contact.objects.get().properties == {"plan": "pro"}


def test_alias_merges_two_contacts(segment, drain):
    client, _ = segment
    old = {
        "userId": "old",
        "anonymousId": "anon-old",
        "timestamp": "2024-01-01T00:00:00Z",
        "traits": {
            "email": "old@example.com",
            "firstName": "Old",
            "color": "red",
            "size": 1,
            "mailingLists": {"news": True, "promo": False},
        },
    }
    new = {
        "userId": "new",
        "timestamp": "2024-02-01T00:00:00Z",
        "traits": {"color": "blue", "mailingLists": {"promo": True}},
    }
    post(client, "/v1/identify", old)
    post(client, "/v1/identify", new)
    post(
        client,
        "/v1/identify",
        {
            "userId": "old",
            "timestamp": "2024-01-02T00:00:00Z",
            "traits": {"vip_list": True},
            "context": {"personas": {"computation_class": "audience", "computation_key": "vip_list"}},
        },
    )
    post(client, "/v1/track", {"userId": "old", "event": "Signed Up", "timestamp": "2024-01-01T00:00:01Z"})
    post(client, "/v1/track", {"userId": "new", "event": "Upgraded", "timestamp": "2024-02-01T00:00:01Z"})
    drain()
    assert Contact.objects.count() == 2

    post(client, "/v1/alias", {"previousId": "old", "userId": "new", "timestamp": "2024-03-01T00:00:00Z"})
    drain()
    merged = Contact.objects.get()
    assert merged.user_id == "new"
    assert merged.email == "old@example.com"
    assert merged.first_name == "Old"
    # Per-property stamps: "new" set color later, "old" alone had size.
    assert merged.properties == {"color": "blue", "size": 1}
    assert sorted(merged.events.values_list("name", flat=True)) == ["Signed Up", "Upgraded"]
    lists = dict(ListMembership.objects.filter(contact=merged).values_list("mailing_list__list_id", "subscribed"))
    assert lists == {"news": True, "promo": True}
    assert AudienceMembership.objects.get(contact=merged).key == "vip_list"
    assert set(ContactIdentity.objects.filter(contact=merged).values_list("anonymous_id", flat=True)) == {
        "anon-old",
        "old",
    }
    # The old userId still finds the merged contact; nothing is re-created.
    post(client, "/v1/identify", {"userId": "old", "traits": {"seats": 5}})
    drain()
    assert Contact.objects.get().properties["seats"] == 5


def test_alias_in_the_same_chunk_as_identifies(segment, drain):
    client, _ = segment
    post(
        client,
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "a", "traits": {"email": "a@example.com", "x": 1}},
                {"type": "identify", "userId": "b", "traits": {"email": "b@example.com", "y": 2}},
                {"type": "alias", "previousId": "a", "userId": "b"},
                {"type": "track", "userId": "a", "event": "After Merge"},
            ]
        },
    )
    result = drain()
    assert result.processed == 4
    contact = Contact.objects.get()
    assert contact.user_id == "b"
    assert contact.properties == {"x": 1, "y": 2}
    assert contact.events.get().name == "After Merge"
    # Every row points at the surviving contact, none at the merged-away one.
    assert set(InboxMessage.objects.values_list("contact_id", flat=True)) == {contact.pk}


def test_an_alias_before_either_id_is_known_waits_then_applies(segment, drain):
    """Alias first: it waits, as anonymous visitors do, instead of being skipped for good
    (which left the person as two contacts)."""
    client, _ = segment
    post(client, "/v1/alias", {"previousId": "ghost", "userId": "nobody"})
    drain()
    row = InboxMessage.objects.get()
    assert row.status == "waiting"
    assert "previousId 'ghost'" in row.reason
    # The visitor's identify arrives later, under the previous (anonymous) id.
    post(client, "/v1/identify", {"anonymousId": "ghost", "traits": {"email": "g@example.com"}})
    drain()
    row.refresh_from_db()
    assert row.status == "processed"
    contact = Contact.objects.get()
    assert (contact.user_id, contact.email) == ("nobody", "g@example.com")


def test_an_alias_before_either_id_is_known_applies_when_the_user_id_is_identified(segment, drain):
    client, _ = segment
    post(client, "/v1/alias", {"previousId": "old-user-7", "userId": "new-user-7"})
    post(client, "/v1/track", {"userId": "old-user-7", "event": "Seen", "properties": {"email": "o@example.com"}})
    drain()
    post(client, "/v1/identify", {"userId": "new-user-7", "traits": {"email": "n@example.com"}})
    drain()
    assert InboxMessage.objects.filter(status="waiting").count() == 0
    # Both ids name one person, whichever id the contact keeps as its userId.
    contact = Contact.objects.get()
    assert {contact.user_id, *contact.identities.values_list("anonymous_id", flat=True)} >= {"old-user-7", "new-user-7"}
    assert contact.email == "n@example.com"
    assert contact.events.get().name == "Seen"


def test_a_visitor_identified_by_another_worker_meanwhile_is_not_left_waiting(segment, drain, monkeypatch):
    """Another worker applies the identify naming the visitor while this one applies the
    visitor's page: the identify commits between this chunk's lookup and its status write, so
    its wake-up found nothing waiting yet. This chunk looks again before it stores 'waiting'."""
    client, _ = segment
    post(client, "/v1/identify", {"userId": "u9", "traits": {"email": "u9@x.io"}})
    drain()
    post(client, "/v1/page", {"anonymousId": "v9", "name": "Pricing"})
    original_flush = ContactBatch.flush
    raced = []

    def flush_then_other_worker_commits(batch):
        original_flush(batch)
        if not raced:
            raced.append(True)
            ContactIdentity.objects.create(contact=Contact.objects.get(user_id="u9"), anonymous_id="v9")

    monkeypatch.setattr(ContactBatch, "flush", flush_then_other_worker_commits)
    drain()
    row = InboxMessage.objects.get(type="page")
    assert (row.status, row.contact.user_id) == ("processed", "u9")
    assert Contact.objects.get(user_id="u9").events.get().name == "Pricing"
