"""Identifier normalisation (DESIGN.md): the one place that says when two
identifier values are the same.

- emails: trimmed and lower-cased;
- phones: E.164 (``+33612345678``), national numbers read with a default
  region (``OMNIVUE_DEFAULT_PHONE_REGION``, an ISO 3166 code, default FR,
  read from the environment at each call: set it the same for ingest and the
  simulator);
- social handles: ``platform:handle`` lower-cased, a leading ``@`` dropped;
- ids (customer, device, anonymous): trimmed, compared as given.

Used by ingest (landing stores normalised identities, so the dbt models never
re-normalise), by the simulator's ground truth, by the reference oracle
(reference.py) and by the tests. Placeholder values (``test@test.com``, an
all-zero device id) are valid here: they are recognised later, by the dbt
project's blocklist (docs/identity.md).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HANDLE = re.compile(r"^([a-z][a-z0-9_.-]*):@?([^\s:@][^\s:]*)$")


def default_region() -> str:
    """The region of phone numbers written without a country code (OMNIVUE_DEFAULT_PHONE_REGION)."""
    return (os.environ.get("OMNIVUE_DEFAULT_PHONE_REGION") or "FR").strip().upper()


class BadPhoneRegion(ValueError):
    """OMNIVUE_DEFAULT_PHONE_REGION is not a region phonenumbers knows."""


def check_default_region() -> str:
    """The default region, or :class:`BadPhoneRegion` when phonenumbers does not know it: checked
    once at start, since a bad one would dead-letter every phone written without a country code."""
    region = default_region()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise BadPhoneRegion(f"OMNIVUE_DEFAULT_PHONE_REGION={os.environ.get('OMNIVUE_DEFAULT_PHONE_REGION')!r} is "
                             "not an ISO 3166 region code phonenumbers knows (e.g. FR, US, GB)")
    return region


def normalize_email(value: str) -> str:
    v = value.strip().lower()
    if not _EMAIL.match(v):
        raise ValueError(f"not an email address: {value!r}")
    return v


@lru_cache(maxsize=262_144)
def _normalize_phone(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {value!r} ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"not a possible phone number: {value!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_SPACES = re.compile(r"\s")


def normalize_phone(value: str, region: str | None = None) -> str:
    # any Unicode space is a separator: French typography groups digits with U+202F or U+00A0,
    # which the phonenumbers library reads only in part
    return _normalize_phone(_SPACES.sub(" ", value).strip(), (region or default_region()).upper())


def normalize_handle(value: str) -> str:
    v = value.strip().lower()
    m = _HANDLE.match(v)
    if not m:
        raise ValueError(f"social_handle must be 'platform:handle', got {value!r}")
    return f"{m.group(1)}:{m.group(2)}"


def normalize_id(value: str) -> str:
    v = value.strip()
    if not v:
        raise ValueError("empty identifier")
    return v


_ID_KINDS = ("customer_id", "device_id", "anonymous_id")

_NORMALIZERS = {
    "email": normalize_email,
    "phone": normalize_phone,
    "social_handle": normalize_handle,
    "customer_id": normalize_id,
    "device_id": normalize_id,
    "anonymous_id": normalize_id,
}


def normalize_identifier(kind: str, value: str) -> str:
    """Normalise one identifier value; ValueError says why it is unusable."""
    try:
        fn = _NORMALIZERS[kind]
    except KeyError:
        raise ValueError(f"unknown identity type {kind!r}") from None
    if isinstance(value, int) and not isinstance(value, bool) and kind in _ID_KINDS:
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{kind} must be a string")
    return fn(value)


def normalize_identities(identities: dict[str, str]) -> dict[str, str]:
    """Normalise every identity of an event; ValueError names the bad one."""
    out: dict[str, str] = {}
    for kind, value in identities.items():
        try:
            out[kind] = normalize_identifier(kind, value)
        except ValueError as exc:
            raise ValueError(f"identities.{kind}: {exc}") from None
    return out
