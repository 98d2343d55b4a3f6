"""The plain-Python oracle of DESIGN.md's consent rules (omnivue.reference), on the cases where it
must say what the warehouse says: sends of nobody, and how a brand's direct message is spelled."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from omnivue.envelope import is_marketing_send, make_event
from omnivue.reference import marketing_violations

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_a_send_of_nobody_never_has_consent_even_next_to_a_grant_of_nobody():
    # every identifier a placeholder or shared: the person is None. The warehouse judges such a send an
    # unattributed_send violation, and such a grant grants nothing; the oracle lumped all of them together
    grant = make_event("consent.granted", T, "web", {"email": "noreply@shop.com"},
                       {"purpose": "marketing", "scope": "email"})
    send = make_event("email.sent", T + timedelta(hours=1), "esp", {"email": "noreply@shop.com"}, {})
    owned_grant = make_event("consent.granted", T, "web", {"email": "ana@x.com"},
                             {"purpose": "marketing", "scope": "email"})
    owned_send = make_event("email.sent", T + timedelta(hours=1), "esp", {"email": "ana@x.com"}, {})
    persons = {grant["event_id"]: None, send["event_id"]: None,
               owned_grant["event_id"]: "p1", owned_send["event_id"]: "p1"}
    verdicts = marketing_violations([grant, send, owned_grant, owned_send], lambda e: persons[e["event_id"]])
    assert verdicts == {send["event_id"].lower(): False, owned_send["event_id"].lower(): True}


@pytest.mark.parametrize("direction, brand_sent", [("outbound", True), ("Outbound", True), (" OUTBOUND ", True),
                                                    ("inbound", False), (None, False)])
def test_a_direct_message_is_a_send_in_any_spelling_of_outbound(direction, brand_sent):
    # as stg_landing__social_events.is_brand_sent reads it: lower(trim(direction)) = 'outbound'
    props = {"text": "hi", "platform": "x"} | ({"direction": direction} if direction is not None else {})
    event = make_event("social.direct_message", T, "x", {"social_handle": "x:ana"}, props)
    assert is_marketing_send(event) is brand_sent
