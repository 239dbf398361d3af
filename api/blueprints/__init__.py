"""One blueprint per resource, all parsing JSON through the app's guarded JSON provider."""

from __future__ import annotations

from typing import Any

import flask_smorest
from marshmallow import RAISE
from webargs.core import is_json, missing
from webargs.flaskparser import FlaskParser


class GuardedParser(FlaskParser):
    """Parse bodies with `request.get_json()`: malformed or too deep JSON is a 400, never a 500.

    Unknown query parameters are refused (422) like unknown body fields: a typo in a filter
    must not silently widen a list.
    """

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE, "querystring": RAISE}

    def _raw_load_json(self, req: Any) -> Any:
        if not (req.mimetype and is_json(req.mimetype)):
            return missing
        return req.get_json()


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest is untyped
    """flask-smorest's Blueprint with the guarded parser."""

    ARGUMENTS_PARSER = GuardedParser()


