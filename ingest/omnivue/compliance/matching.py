"""Keyed identifier hashes, and finding a person's identifier values in text.

The keyed hash is the one pseudonym of an identifier everywhere omnivue
writes one (the snapshot's ``identity_map.identifier_hash``, the suppression
list, subject requests, erasure notices)::

    sha256(OMNIVUE_PSEUDONYM_KEY ":" identifier_type ":" normalised value)

:class:`Matcher` finds a set of identifier values in free text, including the
spellings producers actually send (upper-case or padded emails, national or
spaced phone numbers, ``@Handle``): used to scrub logs and dead letters and
to prove an erasure left nothing behind. :func:`extract_identifiers` goes the
other way: it pulls the identifiers out of a raw (possibly malformed) record.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Iterable

import phonenumbers

from ..identifiers import normalize_identifier
from ..warehouse import IDENTITY_COLUMNS

IDENTIFIER_TYPES: tuple[str, ...] = IDENTITY_COLUMNS


def identifier_hash(key: str, identifier_type: str, value: str) -> str:
    """Keyed hash of a normalised identifier (same formula as the snapshot's identity_map)."""
    return hashlib.sha256(f"{key}:{identifier_type}:{value}".encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Identifier:
    type: str
    value: str  # normalised

    @property
    def node_key(self) -> str:
        return f"{self.type}:{self.value}"

    def hash(self, key: str) -> str:
        return identifier_hash(key, self.type, self.value)


# --- patterns --------------------------------------------------------------------------

_SEP = r"[\s.\-()/]{0,3}"
_RE2_META = set(r"\.^$|?*+()[]{}-/")


def _re2_escape(text: str) -> str:
    """Escape for both Python ``re`` and RE2 (DuckDB's regexp_matches)."""
    return "".join("\\" + ch if ch in _RE2_META else ch for ch in text)


def _phone_core(e164: str) -> str | None:
    """Pattern of a phone number in its usual spellings (+33 6 .., 0033 .., 06 .. ..)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    cc = str(number.country_code)
    nsn = phonenumbers.national_significant_number(number)
    if not nsn:
        return None
    digits = _SEP.join(nsn)
    intl = r"(?:\+|00)?\s*" + cc + _SEP + r"(?:\(0\)" + _SEP + ")?"
    region = phonenumbers.region_code_for_country_code(number.country_code)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region) if region else None
    trunk = getattr(meta, "national_prefix", None) if meta else None
    prefixes = [intl] + ([_re2_escape(trunk) + _SEP] if trunk else [])
    return "(?:" + "|".join(prefixes) + ")" + digits


def _core(ident: Identifier) -> str | None:
    if ident.type == "phone":
        return _phone_core(ident.value)
    if ident.type == "social_handle" and ":" in ident.value:
        platform, handle = ident.value.split(":", 1)
        return _re2_escape(platform) + ":@?" + _re2_escape(handle)
    return _re2_escape(ident.value)


_BOUNDARY_BEFORE = {
    "email": r"(?<![A-Za-z0-9._%+\-])",
    "phone": r"(?<![\d+])",
}
_BOUNDARY_AFTER = {
    "email": r"(?![A-Za-z0-9_\-])(?!\.[A-Za-z0-9])",
    "phone": r"(?!\d)",
    "social_handle": r"(?![A-Za-z0-9_])",
}
_ID_BEFORE = r"(?<![A-Za-z0-9_\-])"
_ID_AFTER = r"(?![A-Za-z0-9_\-])"


class Matcher:
    """Finds any of a person's identifier values in text (case-insensitive,
    usual spellings included, whole values only)."""

    def __init__(self, identifiers: Iterable[Identifier]) -> None:
        self.identifiers = sorted(set(identifiers), key=lambda i: (i.type, i.value))
        strict, loose = [], []
        for ident in self.identifiers:
            core = _core(ident)
            if not core:
                continue
            loose.append(core)
            strict.append(_BOUNDARY_BEFORE.get(ident.type, _ID_BEFORE) + core
                          + _BOUNDARY_AFTER.get(ident.type, _ID_AFTER))
        self._strict = re.compile("|".join(strict), re.IGNORECASE) if strict else None
        #: RE2 pattern (no look-around) for a cheap pre-filter in DuckDB; confirm with :meth:`search`.
        self.re2 = ("(?i)" + "|".join(loose)) if loose else None

    def __bool__(self) -> bool:
        return self._strict is not None

    def search(self, text: str | None) -> bool:
        return bool(self._strict and text and self._strict.search(text))

    def count(self, text: str | None) -> int:
        return len(self._strict.findall(text)) if self._strict and text else 0

    def redact(self, text: str, replacement: str = "[erased]") -> str:
        return self._strict.sub(replacement, text) if self._strict and text else text


# --- identifiers in raw records --------------------------------------------------------

_KEYED = re.compile(r'"(customer_id|email|phone|device_id|anonymous_id|social_handle)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_HANDLE = re.compile(r"(?<![A-Za-z0-9_])([a-z][a-z0-9_.\-]*:@?[A-Za-z0-9_][A-Za-z0-9_.]*)")
_PHONE = re.compile(r"(?<![\d])\+?\d[\d\s.\-()]{6,18}\d(?!\d)")


def _normalised(kind: str, value: object) -> set[str]:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return set()
    raw = str(value)
    out = set()
    try:
        out.add(normalize_identifier(kind, raw))
    except ValueError:
        pass
    stripped = raw.strip()
    if stripped:
        out.add(stripped.lower() if kind in ("email", "social_handle") else stripped)
    return out


def extract_identifiers(raw: str | bytes | None) -> set[Identifier]:
    """Every identifier a raw record (valid or not, JSON or not) carries,
    normalised where possible: for matching records against the suppression list."""
    if raw is None:
        return set()
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    found: set[Identifier] = set()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("identities"), dict):
        for kind, value in obj["identities"].items():
            if kind in IDENTIFIER_TYPES:
                found.update(Identifier(kind, v) for v in _normalised(kind, value))
    for kind, value in _KEYED.findall(text):
        try:
            value = json.loads(f'"{value}"')
        except ValueError:
            pass
        found.update(Identifier(kind, v) for v in _normalised(kind, value))
    for email in _EMAIL.findall(text):
        found.update(Identifier("email", v) for v in _normalised("email", email))
    for handle in _HANDLE.findall(text):
        try:
            found.add(Identifier("social_handle", normalize_identifier("social_handle", handle)))
        except ValueError:
            pass
    for phone in _PHONE.findall(text):
        try:
            found.add(Identifier("phone", normalize_identifier("phone", phone)))
        except ValueError:
            pass
    return found
