"""Every response carries the security headers and a request id; errors never leak internals."""

from __future__ import annotations


def test_security_headers_everywhere(client, monitor):
    for path, headers in [("/healthz", {}), ("/v1/me", monitor.headers), ("/v1/me", {}),
                          ("/openapi.json", {}), ("/nowhere", {})]:
        r = client.get(path, headers=headers)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in r.headers["Content-Security-Policy"]
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert len(r.headers["X-Request-Id"]) >= 16


def test_a_well_formed_request_id_is_echoed_and_a_hostile_one_replaced(client, monitor):
    assert client.get("/v1/me", headers={**monitor.headers, "X-Request-Id": "abc-123"}
                      ).headers["X-Request-Id"] == "abc-123"
    r = client.get("/v1/me", headers={**monitor.headers, "X-Request-Id": "<script>"})
    assert r.headers["X-Request-Id"] != "<script>"


def test_the_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert b"/static/swagger-ui/swagger-ui-bundle.js" in page.data
    assert b"https://" not in page.data.split(b"<body")[0]
    asset = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()
