"""Audience conditions (CONTRACT.md): validation that names the bad condition, and evaluation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from campaigns.audience import Audience, AudienceError, audience_clean


def person(**properties):
    return SimpleNamespace(
        email=properties.pop("email", "ada@example.com"),
        first_name=properties.pop("first_name", "Ada"),
        last_name=properties.pop("last_name", ""),
        properties=properties,
    )


def audience(*conditions, match="all"):
    return Audience(
        audience_clean(
            {
                "match": match,
                "conditions": [dict(zip(("property", "operator", "value"), c, strict=False)) for c in conditions],
            }
        )
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "an audience is an object"),
        ({"match": "most", "conditions": []}, "match must be 'all' or 'any'"),
        ({"conditions": [{"property": "plan", "operator": "is", "value": "pro"}] * 6}, "at most 5 conditions; got 6"),
        (
            {"conditions": [{"property": "plan", "operator": "equals", "value": "pro"}]},
            "condition 1 (plan): operator 'equals'",
        ),
        (
            {
                "conditions": [
                    {"property": "plan", "operator": "is", "value": "pro"},
                    {"property": "age", "operator": "gt", "value": "old"},
                ]
            },
            "condition 2 (age): gt needs a number",
        ),
        (
            {"conditions": [{"property": "signup", "operator": "before", "value": "yesterday"}]},
            "condition 1 (signup): before needs an ISO 8601 date",
        ),
        ({"conditions": [{"property": "plan", "operator": "is"}]}, "condition 1 (plan): is needs a value"),
        (
            {"conditions": [{"property": "favorite color", "operator": "is_set"}]},
            "condition 1: property 'favorite color' is not a property name",
        ),
        (
            {"conditions": [{"property": "plan", "operator": "is", "value": "pro", "extra": 1}]},
            "condition 1: unknown key(s) extra",
        ),
        ({"conditions": [{"operator": "is", "value": "pro"}]}, "condition 1: property is required"),
    ],
)
def test_bad_audiences_are_refused_naming_the_condition(value, message):
    with pytest.raises(AudienceError) as error:
        audience_clean(value)
    assert message in str(error.value)


def test_empty_audiences_match_everyone():
    for empty in (None, {}, {"match": "any", "conditions": []}):
        assert audience_clean(empty) == {}
        assert Audience(audience_clean(empty)).matches(person())


def test_values_are_normalised():
    cleaned = audience_clean(
        {
            "conditions": [
                {"property": "age", "operator": "gt", "value": "21"},
                {"property": "plan", "operator": "is_set", "value": "x"},
            ]
        }
    )
    assert cleaned == {
        "match": "all",
        "conditions": [
            {"property": "age", "operator": "gt", "value": 21},
            {"property": "plan", "operator": "is_set", "value": None},
        ],
    }


@pytest.mark.parametrize(
    ("condition", "matching", "not_matching"),
    [
        (("plan", "is", "Pro"), person(plan="pro"), person(plan="free")),
        (("plan", "is_not", "pro"), person(plan="free"), person(plan="PRO")),
        (("plan", "is_not", "pro"), person(), person(plan="pro")),
        (("email", "contains", "@example.com"), person(), person(email="ada@other.org")),
        (("first_name", "is", "ada"), person(), person(first_name="Grace")),
        (("tags", "contains", "vip"), person(tags=["new", "VIP"]), person(tags=["new"])),
        (("tags", "is", "vip"), person(tags=["vip"]), person(tags=[])),
        (("age", "gt", 21), person(age=30), person(age=21)),
        (("age", "lt", 21), person(age=20.5), person(age="old")),
        (("paid", "is", True), person(paid=True), person(paid=False)),
        (("paid", "is", "true"), person(paid=True), person()),
        (("signup", "before", "2024-05-01"), person(signup="2024-04-30T23:00:00+00:00"), person(signup="2024-05-01")),
        (("signup", "after", "2024-05-01"), person(signup="2024-05-02"), person(signup="2024-05-01T23:59:00+00:00")),
        (
            ("signup", "after", "2024-05-01T12:00:00Z"),
            person(signup="2024-05-01T12:30:00+00:00"),
            person(signup="2024-05-01"),
        ),
        (("plan", "is_set"), person(plan="free"), person(plan="")),
        (("plan", "is_not_set"), person(), person(plan="free")),
        (("last_name", "is_not_set"), person(), person(last_name="Lovelace")),
    ],
)
def test_operators(condition, matching, not_matching):
    rule = audience(condition)
    assert rule.matches(matching)
    assert not rule.matches(not_matching)


def test_all_and_any():
    both = [("plan", "is", "pro"), ("age", "gt", 18)]
    assert audience(*both).matches(person(plan="pro", age=30))
    assert not audience(*both).matches(person(plan="pro", age=10))
    assert audience(*both, match="any").matches(person(plan="free", age=30))
    assert not audience(*both, match="any").matches(person(plan="free", age=10))


def test_why_not_names_the_condition():
    rule = audience(("plan", "is", "pro"), ("age", "gt", 18))
    assert rule.why_not(person(plan="pro", age=3)) == "audience: fails condition 2 (age gt 18)"
    assert audience(("plan", "is", "pro"), match="any").why_not(person()) == "audience: matches none of its conditions"
