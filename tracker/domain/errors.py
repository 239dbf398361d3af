"""One hierarchy of errors for everything the tracker refuses."""

from __future__ import annotations

from typing import Any


class TrackerError(Exception):
    """Root of every error the tracker raises on purpose; `detail` is safe to show."""

    title = "Request refused"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationError(TrackerError):
    """A value is malformed; `errors` maps field paths to messages."""

    title = "Invalid input"

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None) -> None:
        fields = ", ".join(sorted(errors))
        super().__init__(detail or f"Some fields are invalid: {fields}. Correct them and retry.")
        self.errors = errors


class NotFoundError(TrackerError):
    """The thing does not exist, or the caller may not know that it does."""

    title = "Not found"


class PermissionDeniedError(TrackerError):
    """The caller is known but their role does not allow this."""

    title = "Forbidden"


class IllegalTransitionError(TrackerError):
    """A status change the workflow does not allow from the current status."""

    title = "Illegal status transition"

    def __init__(self, current: str, requested: str, allowed: list[str]) -> None:
        super().__init__(
            f"An allegation in status '{current}' cannot move to '{requested}'. "
            f"Allowed next statuses: {', '.join(allowed) or 'none'}.",
            current=current,
            allowed=allowed,
        )
        self.allowed = allowed


class ConflictError(TrackerError):
    """The request collides with the current state (stale version, reused key)."""

    title = "Conflict"


class StaleVersionError(ConflictError):
    """The client's expected version is not the current one."""

    title = "Stale version"

    def __init__(self, expected: int, current: int, changed_by: str | None = None,
                 changed_at: str | None = None) -> None:
        who = f" by {changed_by}" if changed_by else ""
        when = f" at {changed_at}" if changed_at else ""
        super().__init__(
            f"The allegation is at version {current}, not {expected}: it was changed{who}{when}. "
            "Reload it, review the change and retry.",
            current_version=current,
            changed_by=changed_by,
            changed_at=changed_at,
        )
        self.current = current


class BusyError(ConflictError):
    """Other requests kept changing the allegation while this one was being applied."""

    title = "Allegation busy"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"The allegation changed {attempts} times while this request was being applied, "
            "so nothing was recorded. Retry in a moment (with the same Idempotency-Key, if "
            "you sent one).",
            attempts=attempts,
        )


class IdempotencyConflictError(ConflictError):
    """An Idempotency-Key was reused with a different request body."""

    title = "Idempotency-Key reused"


class ErasedError(ConflictError):
    """Personal data of this allegation was erased; no new personal data may be added."""

    title = "Personal data erased"


class AuthenticationError(TrackerError):
    """Missing, malformed, unknown or revoked token."""

    title = "Unauthorized"


class MasterKeyError(TrackerError):
    """The master key is missing or does not match the stored data."""

    title = "Master key problem"
