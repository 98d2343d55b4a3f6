"""Identifier normalisation (DESIGN.md rules)."""

from __future__ import annotations

import pytest

from omnivue.identifiers import normalize_identifier


@pytest.mark.parametrize("kind, raw, expected", [
    ("email", "  Jane.Doe@Example.COM ", "jane.doe@example.com"),
    ("phone", "+33 6 12 34 56 78", "+33612345678"),
    ("phone", "06 12 34 56 78", "+33612345678"),
    ("phone", "0033612345678", "+33612345678"),
    ("phone", "06\u202f12\u202f34\u202f56\u202f78", "+33612345678"),  # narrow no-break spaces
    ("phone", "+33\u20096\u00a012\u200934 56 78", "+33612345678"),
    ("phone", "+1 (415) 555-0100", "+14155550100"),
    ("social_handle", "Twitter:@JaneDoe", "twitter:janedoe"),
    ("social_handle", " instagram:Jane.Doe ", "instagram:jane.doe"),
    ("customer_id", " C0001 ", "C0001"),
])
def test_normalisation(kind, raw, expected):
    assert normalize_identifier(kind, raw) == expected


def test_default_phone_region_is_configurable(monkeypatch):
    monkeypatch.setenv("OMNIVUE_DEFAULT_PHONE_REGION", "US")
    assert normalize_identifier("phone", "(415) 555-0100") == "+14155550100"


@pytest.mark.parametrize("kind, raw", [("email", "no-at-sign"), ("phone", "abc"), ("social_handle", "janedoe"),
                                       ("device_id", "   "), ("passport", "x")])
def test_unusable_values_raise(kind, raw):
    with pytest.raises(ValueError):
        normalize_identifier(kind, raw)


@pytest.mark.parametrize("region, typed, placeholder", [
    ("FR", "00 00 00 00 00", True),
    ("FR", "01 23 45 67 89", True),
    ("US", "1234567890", True),
    ("US", "987-654-3210", True),
    ("US", "000 000 0000", True),
    ("FR", "06 12 34 56 78", False),
    ("FR", "01 40 00 00 00", False),
    ("US", "(415) 555-0100", False),
    ("DE", "030 1234567", False),
])
def test_placeholder_phones_are_blocklisted_after_their_country_code(region, typed, placeholder):
    # phones land in E.164, country code first: '00 00 00 00 00' typed in France is +33000000000, which
    # a pattern for '0+' alone never matched, so strangers typing it in a form became one person
    from omnivue.config import dbt_project_dir
    from omnivue.identifiers import normalize_phone
    from omnivue.reference import IdentityRules

    rules = IdentityRules.from_dbt_project(dbt_project_dir() / "dbt_project.yml")
    assert rules.is_blocklisted("phone", normalize_phone(typed, region)) is placeholder
