"""E-mail delivery over SMTP (`SMTP_URL`): a plain-text message a reviewer can act on."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tracker.domain.errors import TrackerError

DEFAULT_FROM = "allegation-tracker@localhost"

_HEADLINES = {
    "Submitted": "New allegation matching your subscription",
    "Assigned": "Allegation assigned to you",
    "StatusChanged": "Status changed on an allegation assigned to you",
    "InformationAdded": "New information on an allegation assigned to you",
    "SourceAdded": "New source on an allegation assigned to you",
}


class EmailError(Exception):
    """The SMTP server did not accept the message."""


@dataclass(frozen=True)
class SMTPSettings:
    """Where and how to send: parsed from SMTP_URL."""

    host: str
    port: int
    tls: str  # "none" | "starttls" | "ssl"
    username: str | None
    password: str | None
    sender: str


def parse_smtp_url(url: str) -> SMTPSettings:
    """`smtp://[user:pass@]host[:port][?starttls=1&from=addr]` or `smtps://...` (TLS)."""
    if not url:
        raise TrackerError("SMTP_URL is not set: set it (e.g. smtp://127.0.0.1:8025) on the "
                           "workers, then re-drive the failed e-mail deliveries.")
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise TrackerError(f"SMTP_URL {parts.scheme}://{parts.hostname or ''} is not supported: "
                           "use smtp://host:port or smtps://host:port.")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = "ssl" if parts.scheme == "smtps" else (
        "starttls" if query.get("starttls", "0").lower() in ("1", "true", "yes") else "none")
    return SMTPSettings(
        host=parts.hostname, port=parts.port or (465 if tls == "ssl" else 25), tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sender=query.get("from", DEFAULT_FROM))


def message(to: str, sender: str, delivery_id: str, event_type: str, position: int,
            recorded_at: str, allegation: dict[str, Any], data: dict[str, Any],
            link: str) -> EmailMessage:
    """The notification as an e-mail (no personal data: it never leaves the server)."""
    headline = _HEADLINES.get(event_type, f"{event_type} on an allegation")
    summary = " ".join(str(allegation.get("summary") or "").split())  # one line, for headers
    msg = EmailMessage()
    msg["Subject"] = f"[Tracker] {headline}: {summary[:120]}"
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{delivery_id}@allegation-tracker>"
    msg["X-Tracker-Delivery"] = delivery_id
    msg["X-Tracker-Event"] = event_type
    lines = [f"{headline}.", "", f"Summary:     {summary}",
             f"Status:      {allegation.get('status', '')}",
             f"Categories:  {', '.join(allegation.get('categories') or [])}",
             f"Country:     {allegation.get('country') or ''}",
             f"Assigned to: {allegation.get('assignee') or 'nobody yet'}", ""]
    lines += _detail(event_type, data)
    lines += ["", f"Open it: {link}", "",
              f"Event {event_type} at log position {position}, recorded {recorded_at}.",
              f"Delivery {delivery_id} (the same id if this message is ever sent twice).",
              "Personal data of victims and witnesses is never sent by e-mail."]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _detail(event_type: str, data: dict[str, Any]) -> list[str]:
    if event_type == "StatusChanged":
        return [f"Status: {data.get('from_status')} -> {data.get('status')}",
                f"Reason: {data.get('reason')}"]
    if event_type == "Assigned":
        return [f"Assigned to {data.get('assignee')} (before: {data.get('previous') or 'nobody'})."]
    if event_type == "InformationAdded":
        return ["New information:", str(data.get("text") or "")[:2000]]
    if event_type == "SourceAdded":
        source = data.get("source") or {}
        return [f"New source: {source.get('type')}, graded {source.get('reliability')}"
                f"{source.get('credibility')}: {source.get('description')}"]
    return []


def send(settings: SMTPSettings, msg: EmailMessage, timeout: float) -> None:
    """Hand the message to the SMTP server, or raise EmailError."""
    try:
        smtp: smtplib.SMTP
        if settings.tls == "ssl":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        with smtp:
            if settings.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            refused = smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        raise EmailError(f"SMTP {settings.host}:{settings.port}: {type(e).__name__}: {e}"[:300]
                         ) from None
    if refused:
        raise EmailError(f"SMTP server refused recipient(s): {', '.join(refused)}")
