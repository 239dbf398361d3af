"""Small helpers for API tests."""

from __future__ import annotations

from typing import Any


def submit(client: Any, user: Any, report: dict[str, Any], **headers: str) -> Any:
    """POST a report and assert it was accepted."""
    r = client.post("/v1/allegations", json=report, headers={**user.headers, **headers})
    assert r.status_code in (200, 201), r.get_json()
    return r.get_json()


def change(client: Any, user: Any, aid: str, status: str, version: int | None = None,
           **body: Any) -> Any:
    """POST a status change."""
    payload = {"status": status, "reason": f"moving to {status}", **body}
    if version is not None:
        payload["expected_version"] = version
    return client.post(f"/v1/allegations/{aid}/status", json=payload, headers=user.headers)


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status."""
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.content_type == "application/problem+json"
    body: dict[str, Any] = r.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in r.get_data(as_text=True)
    return body
