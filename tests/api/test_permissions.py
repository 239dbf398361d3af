"""Every endpoint x every role x own/other organisation answers exactly the status SPEC §3 says."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import submit

ROLES = ("monitor", "reviewer", "auditor", "admin")

# endpoint -> (method, path template, body maker, {role: status}) for the submitting org's users.
# Monitors of another organisation get 404 on every allegation resource (never 403).
OWN: dict[str, tuple[str, str, Any, dict[str, int]]] = {
    "read": ("GET", "/v1/allegations/{id}", None,
             {"monitor": 200, "reviewer": 200, "auditor": 200, "admin": 200}),
    "history": ("GET", "/v1/allegations/{id}/history", None,
                {"monitor": 403, "reviewer": 200, "auditor": 200, "admin": 200}),
    "status": ("POST", "/v1/allegations/{id}/status",
               lambda ctx: {"status": "under_review", "reason": "triage"},
               {"monitor": 403, "reviewer": 200, "auditor": 403, "admin": 200}),
    "assignment": ("POST", "/v1/allegations/{id}/assignment",
                   lambda ctx: {"assignee": ctx["reviewer_id"]},
                   {"monitor": 403, "reviewer": 200, "auditor": 403, "admin": 200}),
    "comments": ("POST", "/v1/allegations/{id}/comments", lambda ctx: {"text": "noted"},
                 {"monitor": 403, "reviewer": 200, "auditor": 403, "admin": 200}),
    "information": ("POST", "/v1/allegations/{id}/information", lambda ctx: {"text": "more"},
                    {"monitor": 200, "reviewer": 200, "auditor": 403, "admin": 403}),
    "evidence": ("POST", "/v1/allegations/{id}/evidence",
                 lambda ctx: {"sha256": "0" * 64, "media_type": "text/plain", "size": 1,
                              "description": "note"},
                 {"monitor": 200, "reviewer": 200, "auditor": 403, "admin": 403}),
    "erasure": ("POST", "/v1/allegations/{id}/erasure", lambda ctx: {"reason": "request"},
                {"monitor": 403, "reviewer": 403, "auditor": 403, "admin": 200}),
}


@pytest.fixture
def world(client, make_user, report):
    users = {role: make_user(role, "org-a") for role in ROLES}
    outsider = make_user("monitor", "org-b")
    reviewer = users["reviewer"]
    return {"users": users, "outsider": outsider, "report": report,
            "reviewer_id": reviewer.id, "client": client}


def _call(world: dict[str, Any], user: Any, endpoint: str) -> int:
    method, template, body, _ = OWN[endpoint]
    aid = submit(world["client"], world["users"]["monitor"], world["report"])["id"]
    path = template.format(id=aid)
    if method == "GET":
        return world["client"].get(path, headers=user.headers).status_code
    return world["client"].post(path, json=body(world), headers=user.headers).status_code


@pytest.mark.parametrize("endpoint", list(OWN))
@pytest.mark.parametrize("role", ROLES)
def test_roles_of_the_submitting_organisation(world, endpoint: str, role: str) -> None:
    assert _call(world, world["users"][role], endpoint) == OWN[endpoint][3][role]


@pytest.mark.parametrize("endpoint", list(OWN))
def test_a_monitor_of_another_organisation_gets_404_everywhere(world, endpoint: str) -> None:
    assert _call(world, world["outsider"], endpoint) == 404


@pytest.mark.parametrize("endpoint", list(OWN))
def test_non_monitors_of_other_organisations_are_not_scoped(world, make_user, endpoint) -> None:
    # Reviewers, auditors and admins work across organisations.
    for role in ("reviewer", "auditor", "admin"):
        other = make_user(role, "org-z")
        assert _call(world, other, endpoint) == OWN[endpoint][3][role]


@pytest.mark.parametrize("role,status", [("monitor", 201), ("admin", 201), ("reviewer", 403),
                                         ("auditor", 403)])
def test_who_may_submit(client, make_user, report, role: str, status: int) -> None:
    user = make_user(role)
    assert client.post("/v1/allegations", json=report, headers=user.headers).status_code == status


@pytest.mark.parametrize("role,status", [("monitor", 403), ("reviewer", 200), ("auditor", 403),
                                         ("admin", 200)])
def test_who_may_list_users(client, make_user, role: str, status: int) -> None:
    assert client.get("/v1/users", headers=make_user(role).headers).status_code == status


@pytest.mark.parametrize("role", ROLES)
def test_everyone_may_ask_who_they_are(client, make_user, role: str) -> None:
    assert client.get("/v1/me", headers=make_user(role).headers).status_code == 200


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer trk_nope",
                                    "Bearer not-a-token"])
def test_no_valid_token_no_entry(client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for path in ("/v1/me", "/v1/allegations/00000000-0000-4000-8000-000000000000"):
        r = client.get(path, headers=headers)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.content_type == "application/problem+json"


def test_a_revoked_token_no_longer_works(client, services, make_user) -> None:
    user = make_user("reviewer")
    assert client.get("/v1/me", headers=user.headers).status_code == 200
    services.users.revoke(user.id)
    assert client.get("/v1/me", headers=user.headers).status_code == 401


def test_tokens_are_stored_only_as_hashes(services, make_user) -> None:
    user = make_user("admin")
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT * FROM tokens").fetchall()
    assert user.token not in repr(rows)
    assert len(user.token) >= 4 + 43  # prefix + 256 bits in base64url
