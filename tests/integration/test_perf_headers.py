"""The per-request hooks made cheaper keep their answers: default headers, metrics, sessions."""

from __future__ import annotations

from typing import Any

from flask import Response


def test_a_view_s_own_headers_win_and_duplicates_collapse_as_before(app: Any) -> None:
    @app.route("/v1/perf-probe")
    def probe() -> Response:
        response = Response("{}", mimetype="application/json")
        response.headers.add("x-frame-options", "SAMEORIGIN")  # any case counts
        response.headers.add("Cache-Control", "max-age=5")
        response.headers.add("Cache-Control", "private")
        response.headers.add("X-Request-Id", "from-the-view")
        response.headers.add("X-Request-Id", "again")
        return response

    app.before_request_funcs[None].clear()  # no authentication for the probe
    r = app.test_client().get("/v1/perf-probe", headers={"X-Request-Id": "abc-123"})
    assert r.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert r.headers.getlist("Cache-Control") == ["max-age=5"]
    assert r.headers.getlist("X-Request-Id") == ["abc-123"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_api_answers_set_no_cookie_and_no_vary(client: Any, monitor: Any,
                                                report: dict[str, Any]) -> None:
    r = client.post("/v1/allegations", json=report, headers=monitor.headers)
    assert r.status_code == 201
    assert "Set-Cookie" not in r.headers
    assert "Cookie" not in r.headers.get("Vary", "")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Location"] == f"/v1/allegations/{r.get_json()['id']}"


def test_request_metrics_still_count_each_label_set(client: Any, monitor: Any,
                                                     report: dict[str, Any]) -> None:
    for _ in range(3):
        assert client.post("/v1/allegations", json=report, headers=monitor.headers
                           ).status_code == 201
    assert client.post("/v1/allegations", json={}, headers=monitor.headers).status_code == 422
    client.get("/nowhere")
    text = client.get("/metrics").get_data(as_text=True)
    assert ('tracker_http_requests_total{endpoint="/v1/allegations",method="POST",'
            'status="201"} 3.0') in text
    assert ('tracker_http_requests_total{endpoint="/v1/allegations",method="POST",'
            'status="422"} 1.0') in text
    assert 'tracker_http_requests_total{endpoint="unmatched",method="GET",status="404"} 1.0' \
        in text
    assert ('tracker_http_request_seconds_count{endpoint="/v1/allegations",method="POST"} 4.0'
            in text)
