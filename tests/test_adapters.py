"""Provider adapters on the providers' own documented samples (tests/data/providers/,
copied from shared/samples/providers with their quirks), plus malformed items."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from omnivue.adapters import ADAPTERS, AdapterError, event_id_for
from omnivue.envelope import partition_key, topic_for
from omnivue.validation import validate_event

DATA = Path(__file__).parent / "data" / "providers"


def sample(name: str):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def convert(provider: str, payload):
    return ADAPTERS[provider].convert(payload)


def types(result) -> list[str]:
    return [e["event_type"] for e in result.events]


def reason_codes(pairs) -> list[str]:
    return [reason.split(":", 1)[0] for _, reason in pairs]


ITEMS = {"sendgrid_event_webhook.json": 11, "sendgrid_event_webhook_individual_examples.json": 12,
         "x_api_v2_tweets.json": 2, "segment_spec_calls.json": 5, "mailgun_events.json": 7,
         "mailgun_webhook.json": 1, "amplitude_http_v2.json": 1, "facebook_page_webhook.json": 1,
         "instagram_mentions_webhook.json": 1}

SAMPLES = [
    ("sendgrid", "sendgrid_event_webhook.json"),
    ("sendgrid", "sendgrid_event_webhook_individual_examples.json"),
    ("x", "x_api_v2_tweets.json"),
    ("segment", "segment_spec_calls.json"),
    ("mailgun", "mailgun_events.json"),
    ("mailgun", "mailgun_webhook.json"),
    ("amplitude", "amplitude_http_v2.json"),
    ("facebook", "facebook_page_webhook.json"),
    ("instagram", "instagram_mentions_webhook.json"),
]


def test_registry_has_the_providers():
    assert {"sendgrid", "x", "segment", "mailgun", "amplitude", "facebook", "instagram"} <= set(ADAPTERS)
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name and callable(adapter.convert)


@pytest.mark.parametrize("provider,filename", SAMPLES)
def test_every_sample_event_is_a_valid_envelope(provider, filename):
    result = convert(provider, sample(filename))
    for event in result.events:
        valid = validate_event(event)
        assert event["schema_version"] == 1
        assert topic_for(event["event_type"])
        assert partition_key(valid.identities)
        assert event["occurred_at"].endswith("+00:00")
    ids = [e["event_id"] for e in result.events]
    assert len(ids) == len(set(ids))
    # every item is accounted for exactly once
    assert result.accepted + len(result.skipped) + len(result.errors) == ITEMS[filename]


# --- SendGrid ---------------------------------------------------------------------------------

def test_sendgrid_event_types_per_sendgrid_event():
    payload = sample("sendgrid_event_webhook.json")
    result = convert("sendgrid", payload)
    produced = Counter(types(result))
    assert produced == Counter({
        "email.sent": 1, "email.delivered": 1, "email.opened": 1, "email.clicked": 1,
        "email.bounced": 2,  # bounce + dropped
        "email.spam_reported": 1, "email.unsubscribed": 2,  # unsubscribe + group_unsubscribe
        "consent.withdrawn": 3,  # spamreport, unsubscribe, group_unsubscribe
        "consent.granted": 1,  # group_resubscribe
    })
    assert result.accepted == 10
    assert reason_codes(result.skipped) == ["deferred"]  # skipped and counted, not an error
    assert result.skipped[0][0]["event"] == "deferred"
    assert result.errors == []

    # item by item, in the provider's order
    expected = {
        "processed": ["email.sent"], "delivered": ["email.delivered"], "open": ["email.opened"],
        "click": ["email.clicked"], "bounce": ["email.bounced"], "dropped": ["email.bounced"],
        "spamreport": ["email.spam_reported", "consent.withdrawn"],
        "unsubscribe": ["email.unsubscribed", "consent.withdrawn"],
        "group_unsubscribe": ["email.unsubscribed", "consent.withdrawn"],
        "group_resubscribe": ["consent.granted"], "deferred": [],
    }
    for item in payload:
        assert types(convert("sendgrid", [item])) == expected[item["event"]], item["event"]

    ev = {e["event_type"]: e for e in result.events}
    assert ev["email.sent"]["occurred_at"] == "2017-12-15T00:59:29+00:00"  # epoch seconds 1513299569
    assert ev["email.sent"]["source"] == "sendgrid"
    assert ev["email.sent"]["identities"] == {"email": "example@test.com"}
    assert ev["email.sent"]["properties"]["campaign_id"] == "cat facts"
    assert ev["email.clicked"]["properties"]["url"] == "http://www.sendgrid.com/"
    for e in result.events:
        if e["channel"] == "consent":
            assert e["properties"]["purpose"] == "marketing" and e["properties"]["scope"] == "email"
    granted = ev["consent.granted"]
    assert granted["properties"]["asm_group_id"] == 10  # integer as sent; the 000.000.000.000 IP is not a problem
    bounces = {e["properties"]["sendgrid_type"]: e["properties"] for e in result.events
               if e["event_type"] == "email.bounced"}
    assert bounces["bounce"]["bounce_type"] == "hard" and bounces["dropped"]["bounce_type"] == "dropped"
    assert bounces["bounce"]["reason"] == "500 unknown recipient"


def test_sendgrid_placeholder_sg_event_id_keeps_distinct_events_distinct():
    payload = sample("sendgrid_event_webhook.json")
    assert {item["sg_event_id"] for item in payload} == {"sg_event_id"}  # the quirk
    result = convert("sendgrid", payload)
    ids = [e["event_id"] for e in result.events]
    assert len(ids) == len(set(ids)) == 13


def test_sendgrid_bounce_and_blocked_sharing_an_sg_event_id_stay_two_events():
    payload = sample("sendgrid_event_webhook_individual_examples.json")
    pair = [item for item in payload if item["sg_event_id"] == "6g4ZI7SA-xmRDv57GoPIPw=="]
    assert [p["type"] for p in pair] == ["bounce", "blocked"]  # the quirk
    result = convert("sendgrid", pair)
    assert types(result) == ["email.bounced", "email.bounced"]
    assert result.events[0]["event_id"] != result.events[1]["event_id"]
    assert [e["properties"]["bounce_type"] for e in result.events] == ["hard", "soft"]


def test_identical_redelivery_gets_the_same_event_ids():
    payload = sample("sendgrid_event_webhook_individual_examples.json")
    first = convert("sendgrid", payload)
    again = convert("sendgrid", copy.deepcopy(payload))
    assert [e["event_id"] for e in first.events] == [e["event_id"] for e in again.events]
    # key order does not matter (canonical JSON), a different value does
    reordered = [dict(reversed(list(item.items()))) for item in payload]
    assert [e["event_id"] for e in convert("sendgrid", reordered).events] == [e["event_id"] for e in first.events]
    changed = copy.deepcopy(payload)
    changed[0]["timestamp"] += 1
    assert convert("sendgrid", changed).events[0]["event_id"] != first.events[0]["event_id"]
    # the id is uuid5(provider, whole item): reproducible outside the adapter
    assert first.events[0]["event_id"] == event_id_for("sendgrid", payload[0])
    # the same item through another provider name would not collide
    assert event_id_for("mailgun", payload[0]) != event_id_for("sendgrid", payload[0])


def test_sendgrid_identities_are_normalised_by_validation():
    item = dict(sample("sendgrid_event_webhook.json")[0], email="  Example@TEST.com ")
    event = convert("sendgrid", [item]).events[0]
    assert event["identities"] == {"email": "  Example@TEST.com "}  # as the provider wrote it
    assert validate_event(event).identities == {"email": "example@test.com"}
    assert partition_key(event["identities"]) == b"email:example@test.com"


def test_sendgrid_malformed_items_are_errors_with_reasons():
    good = sample("sendgrid_event_webhook.json")[0]
    items = [
        {k: v for k, v in good.items() if k != "email"},  # no identity
        dict(good, timestamp="1513299569"),  # epoch as a string
        dict(good, timestamp=1513299569000),  # milliseconds where seconds are documented
        {k: v for k, v in good.items() if k != "timestamp"},
        dict(good, email="not-an-email"),
        dict(good, event=None),
        "processed",
        dict(good, event="machine_learning_thing"),  # unknown event: skipped, not an error
        good,
    ]
    result = convert("sendgrid", items)
    assert reason_codes(result.errors) == ["missing_field", "bad_time", "bad_time", "missing_field", "identity",
                                           "missing_field", "bad_type"]
    assert "email" in result.errors[0][1]
    assert "identities.email" in result.errors[4][1]
    assert reason_codes(result.skipped) == ["unmapped_event"]
    assert types(result) == ["email.sent"]
    assert result.errors[0][0] is items[0]  # the item itself, for the dead letter


def test_sendgrid_payload_of_the_wrong_shape_raises():
    for payload in ({"event": "processed"}, "text", 42, None):
        with pytest.raises(AdapterError) as exc:
            convert("sendgrid", payload)
        assert exc.value.reason.startswith("wrong_shape:")
    assert convert("sendgrid", []).events == []


# --- X ------------------------------------------------------------------------------------------

def test_x_author_is_joined_through_includes_users():
    result = convert("x", sample("x_api_v2_tweets.json"))
    assert types(result) == ["social.mention", "social.mention"]
    first, second = result.events
    assert first["identities"] == {"social_handle": "x:claire_dupont"}
    assert second["identities"] == {"social_handle": "x:sam_k"}
    assert first["source"] == "x"
    assert first["occurred_at"] == "2026-11-20T09:14:03+00:00"
    props = first["properties"]
    assert props["platform"] == "x" and props["post_id"] == "1861234567890123456" and props["lang"] == "fr"
    assert props["text"].startswith("@MaisonLumiere toujours")
    assert props["mentioned"] == ["MaisonLumiere"]
    assert props["author_id"] == "1456789012345678901"


def test_x_replies_are_comments_and_reposts_reactions():
    payload = sample("x_api_v2_tweets.json")
    payload["data"][0]["referenced_tweets"] = [{"type": "replied_to", "id": "1860000000000000000"}]
    payload["data"][0]["in_reply_to_user_id"] = "1100000000000000001"
    payload["data"][1]["referenced_tweets"] = [{"type": "retweeted", "id": "1860000000000000001"}]
    result = convert("x", payload)
    assert types(result) == ["social.comment", "social.reaction"]
    assert result.events[0]["properties"]["in_reply_to_post_id"] == "1860000000000000000"
    assert result.events[1]["properties"]["reaction"] == "repost"
    # a single-tweet lookup (data is an object) is accepted too
    single = {"data": sample("x_api_v2_tweets.json")["data"][1], "includes": payload["includes"]}
    assert types(convert("x", single)) == ["social.mention"]


def test_x_malformed_items():
    payload = sample("x_api_v2_tweets.json")
    payload["includes"]["users"] = [u for u in payload["includes"]["users"] if u["username"] != "sam_k"]
    del payload["data"][0]["created_at"]
    result = convert("x", payload)
    assert result.events == []
    assert reason_codes(result.errors) == ["missing_field", "no_identity"]
    assert "created_at" in result.errors[0][1]
    assert "includes.users" in result.errors[1][1]
    with pytest.raises(AdapterError):
        convert("x", [{"id": "1"}])
    with pytest.raises(AdapterError):
        convert("x", {"includes": {}})
    assert convert("x", {"meta": {"result_count": 0}}).events == []  # an empty search page


def test_x_post_read_again_with_new_counters_keeps_its_event_id():
    # overlapping searches or a re-run read the same post with other public_metrics: one post, one id
    first = sample("x_api_v2_tweets.json")
    again = copy.deepcopy(first)
    again["data"][0]["public_metrics"] = {"like_count": 12, "retweet_count": 3, "reply_count": 1, "quote_count": 0}
    again["data"][0]["context_annotations"] = [{"domain": {"id": "46", "name": "Brand"}}]
    assert [e["event_id"] for e in convert("x", first).events] == [e["event_id"] for e in convert("x", again).events]
    other = copy.deepcopy(first)
    other["data"][0]["id"] = "1861234567890123999"  # another post (an edit is another id too)
    assert convert("x", other).events[0]["event_id"] != convert("x", first).events[0]["event_id"]


@pytest.mark.parametrize("value, ok", [
    ("2026-11-20T09:14:03z", True),  # RFC 3339 5.6 allows a lower-case z
    ("2026-11-20t09:14:03.5+01:00", True),
    ("2026-11-20", False),  # a date alone is not an instant
    ("2026-W47-5", False),
    ("", False),
])
def test_iso_times_of_the_adapters(value, ok):
    payload = sample("x_api_v2_tweets.json")
    payload["data"] = payload["data"][:1]
    payload["data"][0]["created_at"] = value
    result = convert("x", payload)
    if ok:
        assert len(result.events) == 1 and result.events[0]["occurred_at"].startswith("2026-11-20")
    else:
        assert reason_codes(result.errors) == ["missing_field" if value == "" else "bad_time"]


# --- Segment ----------------------------------------------------------------------------------------

def test_segment_spec_calls():
    calls = sample("segment_spec_calls.json")
    result = convert("segment", calls)
    assert types(result) == ["identity.linked", "mobile.screen_viewed", "identity.linked", "identity.linked"]
    identify, screen, alias, alias_prev = result.events
    assert identify["identities"] == {"customer_id": "97980cfea0067", "anonymous_id": "507f191e810c19729de860ea",
                                      "email": "peter@example.com"}
    assert identify["occurred_at"] == "2015-02-23T22:28:55.111000+00:00"  # ISO with ms -> RFC 3339 with offset
    assert "name" not in json.dumps(identify["properties"])  # traits other than identifiers are not copied
    assert screen["properties"]["screen"] == "Home"
    assert screen["identities"] == {"customer_id": "97980cfea0067",
                                    "anonymous_id": "3a12eab0-bca7-11e4-8dfc-aa07a5b093db"}
    assert alias["identities"] == {"customer_id": "507f191e81", "anonymous_id": "507f191e810c19729de860ea"}
    assert alias_prev["identities"] == {"customer_id": "507f191e81", "anonymous_id": "39239-239239-239239-23923"}
    # unknown track names are skipped and counted
    assert [r for _, r in result.skipped] == [
        "unmapped_event: Segment track 'Report Submitted' has no canonical event type",
        "unmapped_event: Segment track 'Course Clicked' has no canonical event type"]
    assert result.errors == []


def test_segment_shared_message_id_keeps_calls_distinct():
    calls = sample("segment_spec_calls.json")
    shared = [c for c in calls if c["messageId"] == "022bb90c-bbac-11e4-8dfc-aa07a5b093db"]
    assert len(shared) == 4  # the quirk
    ids = [e["event_id"] for e in convert("segment", calls).events]
    assert len(ids) == len(set(ids)) == 4


def test_segment_version_2_and_1_1_are_both_accepted():
    calls = sample("segment_spec_calls.json")
    v2 = dict(calls[0], event="Application Opened", properties={"from_background": False, "version": "545"})
    v11 = calls[2]
    assert v2["version"] == 2 and v11["version"] == "1.1"
    result = convert("segment", [v2, v11])
    assert types(result) == ["mobile.app_opened", "identity.linked"]
    opened = result.events[0]
    assert opened["identities"] == {"customer_id": "97980cfea0067", "anonymous_id": "507f191e810c19729de860ea",
                                    "device_id": "B5372DB0-C21E-11E4-8DFC-AA07A5B093DB"}
    assert opened["occurred_at"] == "2015-12-10T04:08:31.905000+00:00"
    assert opened["properties"]["app_version"] == "545" and opened["properties"]["platform"] == "ios"


def test_segment_track_names_by_the_spec():
    base = sample("segment_spec_calls.json")[1]  # a track call

    def track(name, props):
        return dict(base, event=name, properties=props)

    calls = [
        track("Order Completed", {"order_id": "50314b8e", "total": 30.45, "revenue": 25.0, "currency": "eur"}),
        track("order_completed", {"order_id": "o2", "total": "12.50"}),  # snake_case and a stringified number
        track("Application Installed", {"version": "1.2.3", "build": "123"}),
        track("Push Notification Received", {"campaign": {"id": "spring", "name": "Spring sale"}}),
        track("Push Notification Tapped", {"campaign": {"name": "Spring sale"}}),
        track("Unsubscribed", {"campaign_id": "nl-42"}),
        track("Product Viewed", {"product_id": "p1"}),
    ]
    result = convert("segment", calls)
    assert types(result) == ["mobile.purchase", "mobile.purchase", "mobile.app_installed", "mobile.push_sent",
                             "mobile.push_opened", "email.unsubscribed", "consent.withdrawn"]
    p1, p2, installed, push_sent, push_opened, unsub, withdrawn = (e["properties"] for e in result.events)
    assert (p1["amount"], p1["currency"], p1["order_id"]) == (25.0, "EUR", "50314b8e")  # revenue first
    assert p2["amount"] == 12.5  # then total
    assert installed["app_version"] == "1.2.3"
    assert push_sent["campaign_id"] == "spring" and push_opened["campaign_id"] == "Spring sale"
    assert withdrawn["purpose"] == "marketing" and withdrawn["scope"] == "email"
    assert reason_codes(result.skipped) == ["unmapped_event"]


def test_segment_malformed_calls():
    calls = sample("segment_spec_calls.json")
    no_ids = {k: v for k, v in calls[3].items() if k not in ("userId", "anonymousId")}
    bad_time = dict(calls[3], timestamp="23/02/2015 22:28", originalTimestamp=None, receivedAt=None)
    no_time = {k: v for k, v in calls[3].items() if k not in ("timestamp", "receivedAt", "sentAt")}
    unknown = dict(calls[3], type="teleport")
    bad_amount = dict(calls[1], event="Order Completed", properties={"revenue": "lots"})
    page = dict(calls[3], type="page", name="Pricing")
    result = convert("segment", [no_ids, bad_time, no_time, unknown, bad_amount, page, "track"])
    assert reason_codes(result.errors) == ["no_identity", "bad_time", "missing_field", "bad_type", "bad_type",
                                           "bad_type"]
    assert reason_codes(result.skipped) == ["unmapped_call"]  # page: no web channel in envelope v1
    with pytest.raises(AdapterError):
        convert("segment", {"hello": "world"})
    # one call alone and the Tracking API batch are accepted
    assert types(convert("segment", calls[2])) == ["identity.linked"]
    assert types(convert("segment", {"batch": [calls[2], calls[3]]})) == ["identity.linked", "mobile.screen_viewed"]


# --- nice to have: Mailgun, Amplitude, Facebook, Instagram ------------------------------------------

def test_mailgun_events():
    result = convert("mailgun", sample("mailgun_events.json"))
    assert types(result) == ["email.delivered", "email.bounced", "email.opened", "email.clicked",
                             "email.unsubscribed", "consent.withdrawn", "email.spam_reported", "consent.withdrawn"]
    assert result.events[0]["identities"] == {"email": "john@example.com"}
    assert result.events[0]["occurred_at"] == "2018-06-22T18:29:59.626182+00:00"  # float epoch seconds
    assert result.events[1]["properties"]["bounce_type"] == "dropped"  # suppress-bounce
    assert reason_codes(result.skipped) == ["deferred"]  # the temporary failure
    # the webhook wrapper's sample carries no recipient: no identity at all
    hook = convert("mailgun", sample("mailgun_webhook.json"))
    assert hook.events == [] and reason_codes(hook.errors) == ["no_identity"]
    wrapped = sample("mailgun_webhook.json")
    wrapped["event-data"]["recipient"] = "Alice@Example.com"
    assert types(convert("mailgun", wrapped)) == ["email.opened"]


def test_amplitude_events():
    payload = sample("amplitude_http_v2.json")
    result = convert("amplitude", payload)
    assert result.events == [] and reason_codes(result.skipped) == ["unmapped_event"]  # watch_tutorial
    event = payload["events"][0]
    purchase = dict(event, event_type="Order Completed", revenue=19.99, revenueType="Purchase")
    refund = dict(event, event_type="revenue_amount")  # the sample's revenueType is Refund
    opened = dict(event, event_type="[Amplitude] Application Opened")
    result = convert("amplitude", {"api_key": "k", "events": [purchase, refund, opened]})
    assert types(result) == ["mobile.purchase", "mobile.app_opened"]
    assert result.events[0]["properties"]["amount"] == 19.99
    assert result.events[0]["identities"] == {"customer_id": "12345@gmail.com",
                                              "device_id": "C8F9E604-F01A-4BD9-95C6-8E5357DF265D"}
    assert result.events[0]["occurred_at"] == "2014-04-01T19:42:58.123000+00:00"  # epoch milliseconds
    assert result.events[0]["properties"]["insert_id"] == "5f0adeff-6668-4427-8d02-57d803a2b841"
    assert reason_codes(result.skipped) == ["refund"]
    bad = dict(purchase, time="yesterday")
    assert reason_codes(convert("amplitude", {"events": [bad]}).errors) == ["bad_time"]
    # epoch seconds where milliseconds are documented would be January 1970
    assert reason_codes(convert("amplitude", {"events": [dict(purchase, time=1700000000)]}).errors) == ["bad_time"]


def test_amplitude_sdk_revenue_properties():
    # the SDKs' Revenue API sends $price, $quantity, $revenue, $revenueType... in event_properties
    event = dict(sample("amplitude_http_v2.json")["events"][0], event_type="revenue_amount",
                 event_properties={"$price": 3.99, "$quantity": 2, "$productId": "p1", "$currency": "EUR"})
    for key in ("revenue", "price", "quantity", "revenueType", "productId"):
        event.pop(key, None)
    props = convert("amplitude", {"events": [event]}).events[0]["properties"]
    assert props["amount"] == pytest.approx(7.98) and props["product_id"] == "p1" and props["currency"] == "EUR"
    event["event_properties"] = {"$revenue": 12.5}
    assert convert("amplitude", {"events": [event]}).events[0]["properties"]["amount"] == 12.5
    event["event_properties"] = {"$revenue": -12.5, "$revenueType": "refund"}
    assert reason_codes(convert("amplitude", {"events": [event]}).skipped) == ["refund"]


def test_an_item_with_a_lone_surrogate_is_an_error_with_a_recordable_text():
    from omnivue.webhook import _item_json

    click = dict(sample("sendgrid_event_webhook.json")[0], event="click", url="https://x/\ud83d")
    # only in a field the adapter does not copy: the event is fine, and its id is computed (uuid5 raised)
    opened = dict(sample("sendgrid_event_webhook.json")[0], event="open", useragent="cut \ud83d")
    result = convert("sendgrid", [click, opened])
    assert reason_codes(result.errors) == ["not_utf8"] and "\\ud83d" in result.errors[0][1]
    _item_json(result.errors[0][0]).encode("utf-8")  # the dead letter's text can be written
    assert types(result) == ["email.opened"] and result.events[0]["event_id"] == event_id_for("sendgrid", opened)


def test_facebook_page_comment():
    payload = sample("facebook_page_webhook.json")
    own = convert("facebook", payload)
    assert own.events == [] and reason_codes(own.skipped) == ["own_activity"]  # the page commented on its own post
    payload["entry"][0]["changes"][0]["value"]["from"] = {"id": "2222222222", "name": "A Visitor"}
    result = convert("facebook", payload)
    assert types(result) == ["social.comment"]
    ev = result.events[0]
    assert ev["identities"] == {"social_handle": "facebook:2222222222"}
    assert ev["properties"]["text"] == "and the next one"
    assert ev["occurred_at"] == "2015-12-03T09:30:03+00:00"
    assert "A Visitor" not in json.dumps(ev)  # names are not copied


def test_instagram_mention_has_no_identity():
    result = convert("instagram", sample("instagram_mentions_webhook.json"))
    assert result.events == [] and reason_codes(result.errors) == ["no_identity"]
    comment = {"object": "instagram", "entry": [{"id": "17841400000000001", "time": 1763630043, "changes": [
        {"field": "comments", "value": {"from": {"id": "42", "username": "Lea.Martin"}, "id": "c1",
                                        "media": {"id": "m1"}, "text": "J'adore"}}]}]}
    result = convert("instagram", comment)
    assert types(result) == ["social.comment"]
    assert validate_event(result.events[0]).identities == {"social_handle": "instagram:lea.martin"}
