"""API keys: publickey.secretkey, secret kept hashed, rotation revokes."""

from __future__ import annotations

import hashlib

import pytest
from django.utils import timezone

from integrations import keys
from integrations.keys import api_key_check, api_key_create, api_key_rotate
from integrations.models import ApiKey
from tests.conftest import make_integration

pytestmark = pytest.mark.django_db


def test_key_shape_and_hashed_storage():
    integration, key = make_integration("segment")
    public_id, _, secret = key.partition(".")
    row = ApiKey.objects.get(integration=integration)
    assert row.public_id == public_id
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row.secret_hash
    assert api_key_check(key) == integration
    assert api_key_check(f"  {key}\n") == integration


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k + "x",
        lambda k: k[:-1],
        lambda k: k.partition(".")[0],
        lambda k: "." + k.partition(".")[2],
        lambda k: k.replace(".", ""),
        lambda k: k.partition(".")[0] + "\x00." + k.partition(".")[2],
        lambda k: k.partition(".")[0].upper() + "." + k.partition(".")[2],
    ],
)
def test_a_mangled_key_is_refused(mangle):
    _, key = make_integration("segment")
    assert api_key_check(mangle(key)) is None


def test_rotation_revokes_every_active_key_and_issues_a_new_one():
    integration, first = make_integration("segment")
    second = api_key_create(integration=integration)
    new = api_key_rotate(integration=integration)
    assert api_key_check(first) is None
    assert api_key_check(second) is None
    assert api_key_check(new) == integration
    assert integration.api_keys.filter(revoked_at__isnull=True).count() == 1


def test_keys_are_unique_per_integration():
    first, first_key = make_integration("segment", name="a")
    second, second_key = make_integration("segment", name="b")
    assert first_key != second_key
    assert (api_key_check(first_key), api_key_check(second_key)) == (first, second)


# --- what a web process remembers -------------------------------------------------------------


def test_disabling_rotating_and_enabling_take_effect_at_once_despite_the_memory():
    integration, key = make_integration("segment")
    assert api_key_check(key) == integration  # now remembered
    integration.enabled = False
    integration.save()
    assert api_key_check(key) is None
    integration.enabled = True
    integration.save()
    assert api_key_check(key) == integration
    new = api_key_rotate(integration=integration)
    assert api_key_check(key) is None
    assert api_key_check(new) == integration


def test_a_change_made_elsewhere_is_seen_once_the_memory_expires(monkeypatch, settings):
    """Another process revokes the key (a plain UPDATE here: no signal reaches this process).
    This process keeps trusting it for API_KEY_CACHE_SECONDS, then refuses it."""
    settings.API_KEY_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(keys.time, "monotonic", lambda: clock[0])
    integration, key = make_integration("segment")
    assert api_key_check(key) == integration
    ApiKey.objects.filter(integration=integration).update(revoked_at=timezone.now())
    clock[0] += 4.9
    assert api_key_check(key) == integration
    clock[0] += 0.2
    assert api_key_check(key) is None


def test_the_memory_can_be_switched_off(settings):
    settings.API_KEY_CACHE_SECONDS = 0
    integration, key = make_integration("segment")
    assert api_key_check(key) == integration
    ApiKey.objects.filter(integration=integration).update(revoked_at=timezone.now())
    assert api_key_check(key) is None


def test_a_wrong_secret_is_refused_even_for_a_remembered_public_id():
    _, key = make_integration("segment")
    assert api_key_check(key) is not None
    public_id, _, secret = key.partition(".")
    assert api_key_check(f"{public_id}.{secret[:-1]}A" if secret[-1] != "A" else f"{public_id}.{secret[:-1]}B") is None
