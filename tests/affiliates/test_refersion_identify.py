"""The refersion kind from Refersion's trait table (seeds/004): identify creates or updates an
affiliate, the row is skipped naming each missing trait, Engage traits are kept as properties,
and the seed's delete removes the affiliate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from affiliates.models import Affiliate, Click, Conversion
from contacts.models import Contact, Suppression
from tests.affiliates.conftest import ADDRESS, apply, fixture, identify, make_affiliate, make_offer
from tests.conftest import make_integration
from tests.seeds import SEED_PAYLOADS

PETER = {"firstName": "Peter", "lastName": "Gibbons", "email": "peter@example.com", "address": ADDRESS}


def test_the_seed_identify_creates_a_pending_affiliate_with_its_engage_audience(refersion):
    integration = refersion()
    (row,) = apply(integration, fixture("refersion/identify_affiliate"))
    assert row.status == "processed", row.reason
    affiliate = Affiliate.objects.get()
    assert (affiliate.first_name, affiliate.last_name, affiliate.email) == ("Peter", "Gibbons", "peter@example.com")
    assert affiliate.user_id == "5678"
    assert affiliate.address == ADDRESS
    assert affiliate.status == "pending"
    assert affiliate.offer is None
    assert len(affiliate.referral_code) == 8
    assert affiliate.properties == {"order_completed_last_30days": True}
    assert affiliate.properties_changed_at == {"order_completed_last_30days": "2024-01-10T10:00:00.000000+00:00"}
    # The person is a contact too, and the two are linked.
    assert affiliate.contact == Contact.objects.get(user_id="5678")


@override_settings(SITE_URL="https://yard.example")
def test_the_referral_link_is_built_from_site_url(refersion):
    apply(refersion(), identify(PETER))
    affiliate = Affiliate.objects.get()
    assert affiliate.referral_link == f"https://yard.example/r/{affiliate.referral_code}"


@pytest.mark.parametrize(
    "names",
    [
        {"first_name": "Peter", "last_name": "Gibbons"},
        {"firstName": "Peter", "last_name": "Gibbons"},
        {"first_name": "Peter", "lastName": "Gibbons"},
    ],
    ids=["snake_case", "camel-then-snake", "snake-then-camel"],
)
def test_snake_case_and_mixed_spellings_create_the_affiliate(refersion, names):
    traits = {**names, "email": "Peter@Example.com", "address": {**ADDRESS, "postal_code": "78701"}}
    del traits["address"]["postalCode"]
    (row,) = apply(refersion(), identify(traits))
    assert row.status == "processed", row.reason
    affiliate = Affiliate.objects.get()
    assert (affiliate.first_name, affiliate.last_name, affiliate.email) == ("Peter", "Gibbons", "peter@example.com")
    assert affiliate.address["postal_code"] == "78701"


def test_a_name_alone_is_split_and_kept_as_sent(refersion):
    (row,) = apply(refersion(), identify({"name": "Peter  Gibbons", "email": "peter@example.com", "address": ADDRESS}))
    assert row.status == "processed", row.reason
    affiliate = Affiliate.objects.get()
    assert (affiliate.first_name, affiliate.last_name, affiliate.name) == ("Peter", "Gibbons", "Peter Gibbons")


def test_a_single_word_name_is_a_first_name(refersion):
    apply(refersion(), identify({"name": "Cher", "email": "cher@example.com", "address": ADDRESS}))
    affiliate = Affiliate.objects.get()
    assert (affiliate.first_name, affiliate.last_name, affiliate.name) == ("Cher", "", "Cher")


@pytest.mark.parametrize(
    ("traits", "reason"),
    [
        (
            {**PETER, "address": {"street": "1 Initech Way", "city": "Austin", "country": "US"}},
            "missing traits address.state, address.postalCode (or address.postal_code)",
        ),
        ({**PETER, "address": "1 Initech Way, Austin"}, "trait address must be an object"),
        ({**PETER, "address": ["1 Initech Way"]}, "trait address must be an object"),
        ({k: v for k, v in PETER.items() if k != "address"}, "missing trait address"),
        ({k: v for k, v in PETER.items() if k != "email"}, "missing trait email"),
        ({**PETER, "email": "[email protected]"}, "trait email: '[email protected]' is not a valid email address"),
        ({k: v for k, v in PETER.items() if k != "lastName"}, "missing trait lastName"),
        ({"first_name": "Peter", "email": "peter@example.com", "address": ADDRESS}, "missing trait last_name"),
        ({"last_name": "Gibbons", "email": "peter@example.com", "address": ADDRESS}, "missing trait first_name"),
        ({"email": "peter@example.com", "address": ADDRESS}, "missing trait name (or firstName and lastName)"),
        ({**PETER, "address": {**ADDRESS, "city": ""}}, "missing trait address.city"),
    ],
    ids=[
        "address-missing-parts",
        "address-a-string",
        "address-a-list",
        "no-address",
        "no-email",
        "bad-email",
        "no-lastName",
        "no-last_name",
        "no-first_name",
        "no-name-at-all",
        "empty-city",
    ],
)
def test_missing_or_malformed_traits_create_no_affiliate_and_name_the_trait(refersion, traits, reason):
    (row,) = apply(refersion(), identify(traits))
    assert row.status == "skipped"
    assert row.reason.startswith("no affiliate created: ")
    assert reason in row.reason
    assert not Affiliate.objects.exists()
    # The person is still kept as a contact, as every kind keeps them.
    assert Contact.objects.filter(user_id="5678").exists()


def test_every_problem_is_named_at_once(refersion):
    (row,) = apply(refersion(), identify({"firstName": "Peter", "email": "nope", "address": 5}))
    assert row.reason == (
        "no affiliate created: missing trait lastName; trait email: 'nope' is not a valid email address; "
        "trait address must be an object (street, city, state, postalCode, country), not int"
    )


def test_a_duplicate_identify_updates_the_same_affiliate(refersion):
    integration = refersion()
    apply(integration, identify(PETER, message_id="a"))
    code = Affiliate.objects.get().referral_code
    (row,) = apply(
        integration, identify({**PETER, "lastName": "Gibbons-Smith"}, message_id="b", ts="2024-01-11T00:00:00Z")
    )
    assert row.status == "processed"
    affiliate = Affiliate.objects.get()
    assert affiliate.last_name == "Gibbons-Smith"
    assert affiliate.referral_code == code


def test_an_identify_by_email_finds_the_affiliate_and_gives_it_the_user_id(refersion):
    integration = refersion()
    apply(integration, {**identify(PETER), "userId": None, "anonymousId": "anon-1"})
    assert Affiliate.objects.get().user_id is None
    apply(integration, identify(PETER, message_id="b", ts="2024-01-11T00:00:00Z"))
    assert Affiliate.objects.get().user_id == "5678"


def test_an_out_of_order_identify_does_not_overwrite_newer_values(refersion):
    integration = refersion()
    newer = identify(
        {**PETER, "lastName": "New", "vip": True},
        message_id="new",
        ts="2024-02-01T00:00:00Z",
        context={"personas": {"computation_class": "trait"}},
    )
    older = identify(
        {**PETER, "lastName": "Old", "vip": False},
        message_id="old",
        ts="2024-01-01T00:00:00Z",
        context={"personas": {"computation_class": "trait"}},
    )
    apply(integration, newer)
    (row,) = apply(integration, older)
    assert row.status == "processed"
    affiliate = Affiliate.objects.get()
    assert affiliate.last_name == "New"
    assert affiliate.properties == {"vip": True}
    # Both in one chunk, the older one sent last: the same.
    Affiliate.objects.all().delete()
    apply(integration, {**newer, "messageId": "new2"}, {**older, "messageId": "old2"})
    assert Affiliate.objects.get().last_name == "New"


def test_engage_syncs_that_send_only_changes_update_properties_with_their_time(refersion):
    integration = refersion()
    apply(integration, fixture("refersion/identify_affiliate"))
    engage = {"personas": {"computation_class": "audience", "computation_key": "order_completed_last_30days"}}
    # A later sync sends only the changed membership (no name, no address): it still applies.
    (row,) = apply(
        integration,
        identify(
            {"order_completed_last_30days": False}, message_id="sync-1", ts="2024-02-10T00:00:00Z", context=engage
        ),
    )
    assert row.status == "processed", row.reason
    affiliate = Affiliate.objects.get()
    assert affiliate.properties == {"order_completed_last_30days": False}
    assert affiliate.properties_changed_at["order_completed_last_30days"].startswith("2024-02-10")
    # A computed trait, then the same audience value again: its change time stays.
    apply(
        integration,
        identify(
            {"lifetime_value": 1250.5, "order_completed_last_30days": False},
            message_id="sync-2",
            ts="2024-03-01T00:00:00Z",
            context={"personas": {"computation_class": "trait"}},
        ),
    )
    affiliate.refresh_from_db()
    assert affiliate.properties == {"order_completed_last_30days": False, "lifetime_value": 1250.5}
    assert affiliate.properties_changed_at["order_completed_last_30days"].startswith("2024-02-10")
    assert affiliate.properties_changed_at["lifetime_value"].startswith("2024-03-01")


def test_audience_shaped_traits_without_personas_are_properties_and_others_are_not(refersion):
    apply(refersion(), identify({**PETER, "big_spenders": True, "plan": "gold", "isVip": True}))
    assert Affiliate.objects.get().properties == {"big_spenders": True}
    # The contact keeps every trait, as it always has.
    assert Contact.objects.get().properties["plan"] == "gold"


def test_new_affiliates_start_as_the_integration_is_set(db):
    offer = make_offer()
    integration, _key = make_integration("refersion", affiliate_status="active", offer=str(offer.pk))
    (row,) = apply(integration, identify(PETER))
    assert row.warnings == []
    affiliate = Affiliate.objects.get()
    assert (affiliate.status, affiliate.offer) == ("active", offer)


def test_an_offer_setting_that_names_no_offer_leaves_the_affiliate_without_one(db):
    integration, _key = make_integration("refersion", offer="9999")
    (row,) = apply(integration, identify(PETER))
    assert row.status == "processed"
    assert row.warnings == ["setting offer=9999 names no offer; the affiliate has none"]
    assert Affiliate.objects.get().offer is None


def test_the_key_has_the_form_publickey_secretkey(db):
    _integration, key = make_integration("refersion")
    public, _, secret = key.partition(".")
    assert public and secret and "." not in secret


# --- delete ----------------------------------------------------------------------------------------
def test_the_seed_delete_removes_the_affiliate_and_keeps_its_conversions_anonymised(refersion):
    integration = refersion()
    apply(integration, identify(PETER))
    affiliate = Affiliate.objects.get()
    Click.objects.create(affiliate=affiliate, click_id="c1")
    conversion = Conversion.objects.create(
        affiliate=affiliate,
        order_id="o-1",
        amount=Decimal("100"),
        currency="EUR",
        commission=Decimal("10"),
        order_at=datetime(2024, 1, 5, tzinfo=UTC),
        buyer_email="buyer@example.com",
    )
    (row,) = apply(integration, SEED_PAYLOADS["refersion_delete"])
    assert row.status == "processed", row.reason
    assert not Affiliate.objects.exists()
    assert not Click.objects.exists()
    assert not Contact.objects.exists()
    conversion.refresh_from_db()
    assert conversion.affiliate is None
    assert (conversion.amount, conversion.currency, conversion.commission) == (Decimal("100"), "EUR", Decimal("10"))
    assert Suppression.objects.filter(user_id="5678", reason="erased").exists()


def test_an_identify_and_its_delete_in_one_chunk_leave_nothing(refersion):
    (first, second) = apply(refersion(), identify(PETER, ts="2019-02-01T00:00:00Z"), SEED_PAYLOADS["refersion_delete"])
    assert (first.status, second.status) == ("processed", "processed")
    assert not Affiliate.objects.exists()
    assert not Contact.objects.exists()


def test_a_delete_of_an_unknown_user_is_processed(refersion):
    make_affiliate("OTHER", email="someone@example.com", user_id="other")
    (row,) = apply(refersion(), SEED_PAYLOADS["refersion_delete"])
    assert row.status == "processed", row.reason
    assert Affiliate.objects.get().user_id == "other"


def test_a_later_identify_of_a_deleted_person_creates_nothing(refersion):
    integration = refersion()
    apply(integration, identify(PETER, ts="2019-02-01T00:00:00Z"))
    apply(integration, SEED_PAYLOADS["refersion_delete"])
    (row,) = apply(integration, identify(PETER, message_id="again", ts="2024-01-01T00:00:00Z"))
    assert row.status == "skipped"
    assert "suppression list" in row.reason
    assert not Affiliate.objects.exists()


def test_an_erasure_by_any_kind_erases_the_affiliates_personal_data(refersion, segment_kind):
    apply(refersion(), identify(PETER, ts="2019-02-01T00:00:00Z"))
    code = Affiliate.objects.get().referral_code
    (row,) = apply(segment_kind, SEED_PAYLOADS["refersion_delete"])
    assert row.status == "processed"
    affiliate = Affiliate.objects.get()  # kept (only a Refersion delete removes it), without the person
    assert affiliate.referral_code == code
    assert (affiliate.email, affiliate.user_id, affiliate.first_name, affiliate.address) == (None, None, "", {})
    assert affiliate.status == "disabled"
    assert affiliate.erased_at is not None
    assert affiliate.contact is None


def test_an_erased_buyer_leaves_their_orders_anonymised(segment_kind):
    from tests.affiliates.conftest import track

    make_affiliate("PETER", offer=make_offer())
    apply(segment_kind, identify({"email": "buyer@example.com"}, user_id="buyer-1", ts="2024-01-01T00:00:00Z"))
    order = {"order_id": "o-1", "total": 50, "currency": "EUR", "ref": "PETER", "email": "buyer@example.com"}
    apply(segment_kind, track("Order Completed", order, message_id="oc", user_id="buyer-1", ts="2024-01-02T00:00:00Z"))
    conversion = Conversion.objects.get()
    assert (conversion.buyer_user_id, conversion.buyer_email) == ("buyer-1", "buyer@example.com")
    delete = {"type": "delete", "userId": "buyer-1", "messageId": "del", "timestamp": "2024-01-03T00:00:00Z"}
    (row,) = apply(segment_kind, delete)
    assert row.status == "processed"
    conversion.refresh_from_db()
    assert (conversion.buyer_user_id, conversion.buyer_email, conversion.buyer_contact) == ("", "", None)
    assert (conversion.amount, conversion.commission, conversion.currency) == (Decimal("50"), Decimal("5.00"), "EUR")


def test_create_integration_takes_the_refersion_settings(db):
    import io
    import json

    from django.core.management import CommandError, call_command

    from integrations.models import Integration

    offer = make_offer()
    out = io.StringIO()
    call_command(
        "create_integration",
        "--kind",
        "refersion",
        "--name",
        "Refersion",
        "--set",
        "affiliate_status=active",
        "--set",
        f"offer={offer.pk}",
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    assert printed["kind"] == "refersion" and "." in printed["api_key"]
    behaviour = Integration.objects.get(pk=printed["id"]).behaviour()
    assert (behaviour.option("affiliate_status"), behaviour.option("offer")) == ("active", offer.pk)
    with pytest.raises(CommandError, match="affiliate_status must be one of pending, active"):
        call_command("create_integration", "--kind", "refersion", "--name", "R2", "--set", "affiliate_status=denied")
    with pytest.raises(CommandError, match="offer must be a whole number"):
        call_command("create_integration", "--kind", "refersion", "--name", "R3", "--set", "offer=spring")
