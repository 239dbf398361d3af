"""Abuse limits: brute force of tokens and write floods get 429 with Retry-After."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.api.helpers import assert_problem
from tests.conftest import event_count


@pytest.fixture
def config(config, redis_url):
    # A real Redis shared by all API processes, and a low write rate to reach the limit.
    return replace(config, redis_url=redis_url, write_rate=3)


def test_brute_forcing_tokens_gets_429_even_with_a_valid_token_then(client, monitor):
    address = {"REMOTE_ADDR": "10.9.8.7"}
    codes = [client.get("/v1/me", headers={"Authorization": f"Bearer trk_guess{i}"},
                        environ_base=address).status_code for i in range(25)]
    assert codes[:20] == [401] * 20
    assert set(codes[20:]) == {429}
    blocked = client.get("/v1/me", headers=monitor.headers, environ_base=address)
    body = assert_problem(blocked, 429)
    assert "failed authentications" in body["detail"]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    other = client.get("/v1/me", headers=monitor.headers, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert other.status_code == 200


def test_writes_beyond_the_per_token_rate_get_429_and_record_nothing(client, monitor, report,
                                                                     services, make_user):
    codes = [client.post("/v1/allegations", json=report, headers=monitor.headers).status_code
             for _ in range(8)]
    assert codes.count(201) >= 3
    assert 429 in codes
    limited = [c for c in codes if c == 429]
    assert event_count(services) == codes.count(201) == 8 - len(limited)
    r = client.post("/v1/allegations", json=report, headers=monitor.headers)
    if r.status_code == 429:
        assert int(r.headers["Retry-After"]) >= 1
        assert_problem(r, 429)
    # Reads are not limited, and another token has its own budget.
    assert client.get("/v1/me", headers=monitor.headers).status_code == 200
    other = make_user("monitor")
    assert client.post("/v1/allegations", json=report, headers=other.headers).status_code == 201
