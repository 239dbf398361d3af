"""Where notifications may go: webhook URLs (http/https, optionally public only) and addresses."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from tracker.domain.errors import ValidationError

_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$")
MAX_URL = 2000


class UnsafeTargetError(ValidationError):
    """A webhook host resolves to an address this deployment refuses (SSRF protection)."""


def check_url(url: str, deny_private: bool, field: str = "url") -> str:
    """The URL if it is an absolute http(s) URL without credentials (and public, when asked)."""
    problem = _url_problem(url)
    if problem:
        raise ValidationError({field: [problem]})
    if deny_private:
        parts = urlsplit(url)
        resolve_public(parts.hostname or "", parts.port or _default_port(parts.scheme), field)
    return url


def _url_problem(url: str) -> str | None:
    if not isinstance(url, str) or len(url) > MAX_URL:
        return f"Give an http or https URL of at most {MAX_URL} characters."
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "The URL must not contain spaces or control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "Not a valid URL: check the host and port."
    if parts.scheme not in ("http", "https"):
        return "Only http and https URLs are accepted, e.g. https://example.org/hooks/tracker."
    if not parts.hostname:
        return "The URL needs a host, e.g. https://example.org/hooks/tracker."
    if parts.username or parts.password:
        return ("Credentials in the URL are refused; the X-Tracker-Signature header "
                "authenticates the tracker to your receiver.")
    if parts.fragment:
        return "Remove the #fragment: it is never sent to a server."
    return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_public(host: str, port: int, field: str = "url") -> list[str]:
    """The host's addresses, refusing any that is not public (TRACKER_WEBHOOK_DENY_PRIVATE)."""
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeTargetError({field: [
            f"The host {host!r} does not resolve; check the name (private addresses are "
            "refused on this server, so it must resolve to a public address)."]})
    private = [a for a in addresses if not is_public(a)]
    if private:
        raise UnsafeTargetError({field: [
            f"The host {host!r} resolves to a loopback, private or link-local address "
            f"({', '.join(private)}), which this server refuses "
            "(TRACKER_WEBHOOK_DENY_PRIVATE=1). Use a publicly reachable receiver."]})
    return addresses


def check_address(address: str, field: str = "address") -> str:
    """The e-mail address if it looks like one (one @, a dotted or single-label domain)."""
    if not isinstance(address, str) or len(address) > 254 or not _ADDRESS.match(address):
        raise ValidationError({field: ["Not an e-mail address such as reviewer@example.org."]})
    return address
