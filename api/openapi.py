"""OpenAPI: every error documented as problem+json, and the errors every /v1 route can give."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
COMMON = {
    "400": "Malformed request (for example, invalid JSON)",
    "401": "Missing, unknown or revoked token",
    "403": "The caller's role may not do this",
    "404": "Not found, or not visible to the caller",
    "413": "Body over 1 MiB",
    "415": "Body is not JSON",
    "422": "Invalid input: `errors` names each field",
    "429": "Rate limited: see Retry-After",
}


class ProblemResponses(BasePlugin):
    """Rewrites error responses to application/problem+json and adds the common ones."""

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **_: Any) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            if path and path.startswith("/v1"):
                for code, description in COMMON.items():
                    if code in ("413", "415") and method not in ("post", "put", "patch"):
                        continue
                    responses.setdefault(code, {"description": description})
            if method in ("post", "put", "patch") and path and path.startswith("/v1"):
                responses.setdefault("409", {"description": "Conflict with the current state"})
                responses.setdefault("412", {"description": "If-Match is stale"})
            responses.setdefault("503", {"description": "Not ready, or a wait timed out"})
            for code, response in responses.items():
                if str(code)[0] in "45" and isinstance(response, dict):
                    response["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
