"""Webhook delivery: a signed JSON POST with timeouts, over the standard library's http.client."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from tracker.notifications import targets

USER_AGENT = "allegation-tracker-webhooks/1"
MAX_RESPONSE = 64 * 1024


class WebhookError(Exception):
    """The receiver did not acknowledge the delivery (network error or non-2xx answer)."""


def body(delivery_id: str, event_type: str, allegation_id: str, position: int,
         recorded_at: str, data: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): the same for every attempt of a delivery."""
    payload = {"delivery_id": delivery_id, "event_type": event_type,
               "allegation_id": allegation_id, "position": position,
               "recorded_at": recorded_at, "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      default=str).encode("utf-8")


def signature(secret: str, payload: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body with the subscription secret>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def headers(delivery_id: str, event_type: str, secret: str, payload: bytes,
            attempt: int) -> dict[str, str]:
    """The request headers; X-Tracker-Delivery is stable across retries."""
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
            "X-Tracker-Delivery": delivery_id, "X-Tracker-Event": event_type,
            "X-Tracker-Signature": signature(secret, payload),
            "X-Tracker-Attempt": str(attempt)}


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to an address checked beforehand, not to whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, the certificate still verified against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, payload: bytes, request_headers: dict[str, str], timeout: float,
         deny_private: bool) -> int:
    """POST the payload; returns the 2xx status or raises WebhookError.

    `timeout` bounds the connection and every read. Redirects are not followed. With
    `deny_private`, the host is resolved and checked now, and the connection goes to the
    checked address (no DNS-rebinding window).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    try:
        if deny_private:
            address = targets.resolve_public(host, port)[0]
            conn = (_PinnedHTTPS if https else _PinnedHTTP)(host, port, address, timeout)
        elif https:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
    except targets.UnsafeTargetError as e:
        raise WebhookError(f"refused target: {'; '.join(e.errors['url'])}") from None
    try:
        conn.request("POST", path, body=payload, headers=request_headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE)
    except TimeoutError:
        raise WebhookError(f"timed out after {timeout:g} s waiting for {host}:{port}") from None
    except (OSError, http.client.HTTPException) as e:
        raise WebhookError(f"{type(e).__name__}: {e}"[:300]) from None
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        raise WebhookError(f"HTTP {response.status} {response.reason}".strip())
    return response.status
