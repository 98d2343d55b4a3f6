"""Identifier normalisation (DESIGN.md rules)."""

from __future__ import annotations

import pytest

from omnivue.identifiers import normalize_identifier


@pytest.mark.parametrize("kind, raw, expected", [
    ("email", "  Jane.Doe@Example.COM ", "jane.doe@example.com"),
    ("phone", "+33 6 12 34 56 78", "+33612345678"),
    ("phone", "06 12 34 56 78", "+33612345678"),
    ("phone", "0033612345678", "+33612345678"),
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
