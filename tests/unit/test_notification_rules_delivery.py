"""Delivery rules that need no server: backoff, signatures, targets, SMTP settings, messages."""

from __future__ import annotations

import hashlib
import hmac
import json
import random

import pytest

from tracker.domain.errors import TrackerError, ValidationError
from tracker.notifications import targets
from workers import email, webhook
from workers.relay import backoff


def test_backoff_doubles_with_bounded_jitter_and_a_cap() -> None:
    assert backoff(6, 10, 3600, 0.0) == [10, 20, 40, 80, 160]
    assert backoff(1, 10, 3600, 0.2) == []
    assert backoff(4, 0, 3600, 0.2) == [0, 0, 0]
    assert backoff(12, 10, 300, 0.0)[-1] == 300
    rng = random.Random(1)
    for _ in range(200):
        for i, seconds in enumerate(backoff(6, 10, 3600, 0.2, rng)):
            assert 0.8 * 10 * 2 ** i - 1 <= seconds <= 1.2 * 10 * 2 ** i + 1
    spread = {tuple(backoff(6, 10, 3600, 0.2, rng)) for _ in range(20)}
    assert len(spread) > 1  # jitter spreads retries of many deliveries apart


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    body = webhook.body("d-1", "Submitted", "a-1", 7, "2024-01-01T00:00:00+00:00",
                        {"summary": "café", "categories": ["other"]})
    headers = webhook.headers("d-1", "Submitted", "k" * 20, body, attempt=3)
    expected = hmac.new(b"k" * 20, body, hashlib.sha256).hexdigest()
    assert headers["X-Tracker-Signature"] == f"sha256={expected}"
    assert headers["X-Tracker-Delivery"] == "d-1" and headers["X-Tracker-Event"] == "Submitted"
    assert json.loads(body) == {"delivery_id": "d-1", "event_type": "Submitted",
                                "allegation_id": "a-1", "position": 7,
                                "recorded_at": "2024-01-01T00:00:00+00:00",
                                "data": {"summary": "café", "categories": ["other"]}}
    again = webhook.body("d-1", "Submitted", "a-1", 7, "2024-01-01T00:00:00+00:00",
                         {"categories": ["other"], "summary": "café"})
    assert again == body  # every retry sends (and signs) the same bytes


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
    ("93.184.215.14", True), ("2606:4700:4700::1111", True), ("8.8.8.8", True),
])
def test_only_globally_routable_addresses_count_as_public(address: str, public: bool) -> None:
    assert targets.is_public(address) is public


def test_urls_are_checked_before_anything_is_resolved() -> None:
    assert targets.check_url("https://example.org/h?x=1", deny_private=False)
    assert targets.check_url("http://127.0.0.1:8000/h", deny_private=False)
    for bad in ("ftp://example.org", "https://", "//example.org/h", "https://a b",
                "https://u:p@example.org", "https://example.org:99999/", "https://x/#frag",
                "https://example.org/" + "a" * 2000):
        with pytest.raises(ValidationError):
            targets.check_url(bad, deny_private=False)
    with pytest.raises(targets.UnsafeTargetError):
        targets.check_url("http://127.0.0.1/h", deny_private=True)


def test_email_addresses() -> None:
    assert targets.check_address("rev@example.org")
    assert targets.check_address("rev+tracker@localhost")
    for bad in ("rev", "rev@", "@example.org", "a b@example.org", "rev@exa mple.org",
                "<rev@example.org>"):
        with pytest.raises(ValidationError):
            targets.check_address(bad)


def test_smtp_url_settings() -> None:
    plain = email.parse_smtp_url("smtp://127.0.0.1:8025")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("127.0.0.1", 8025, "none",
                                                                    None)
    tls = email.parse_smtp_url("smtps://bot%40ngo.org:p%40ss@mail.ngo.org?from=t@ngo.org")
    assert (tls.port, tls.tls, tls.username, tls.password, tls.sender) == (
        465, "ssl", "bot@ngo.org", "p@ss", "t@ngo.org")
    assert email.parse_smtp_url("smtp://mail.ngo.org:587?starttls=1").tls == "starttls"
    for bad in ("", "http://mail", "smtp://"):
        with pytest.raises(TrackerError):
            email.parse_smtp_url(bad)


def test_the_email_says_what_happened_and_where_to_act() -> None:
    msg = email.message("rev@example.org", "t@example.org", "d-9", "StatusChanged", 12,
                        "2024-05-01T10:00:00+00:00",
                        {"summary": "Detentions in Gao", "status": "needs_information",
                         "categories": ["arbitrary_arrest_detention"], "country": "ML",
                         "assignee": "rev-1"},
                        {"from_status": "under_review", "status": "needs_information",
                         "reason": "Which checkpoint?"},
                        "https://tracker.example.org/v1/allegations/a-1")
    assert msg["Subject"] == ("[Tracker] Status changed on an allegation assigned to you: "
                              "Detentions in Gao")
    assert msg["Message-ID"] == "<d-9@allegation-tracker>"
    text = msg.get_content()
    for part in ("under_review -> needs_information", "Which checkpoint?", "ML",
                 "https://tracker.example.org/v1/allegations/a-1", "d-9", "position 12"):
        assert part in text


def test_a_summary_spanning_lines_makes_a_one_line_subject() -> None:
    msg = email.message("rev@example.org", "t@example.org", "d-1", "Submitted", 1, "t",
                        {"summary": "Shots fired\r\nBcc: someone@example.org"}, {}, "link")
    assert msg["Subject"] == ("[Tracker] New allegation matching your subscription: "
                              "Shots fired Bcc: someone@example.org")
    assert msg["Bcc"] is None
