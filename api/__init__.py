"""The HTTP API: a Flask app factory over the tracker's application service."""

from __future__ import annotations

import json as _json
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from werkzeug.exceptions import BadRequest

from tracker import config as tracker_config
from tracker.bootstrap import Tracker, build

MAX_JSON_DEPTH = 32

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
}
# The vendored Swagger UI page starts itself with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            "'unsafe-inline'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'")


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests (a scalar or an empty container: 1), counted level by level;
    stops at the first level beyond `limit`."""
    level = [value]
    depth = 0
    while True:
        depth += 1
        if depth > limit:
            return depth
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        if not below:
            return depth
        level = below


class GuardedJSON(DefaultJSONProvider):
    """JSON bodies: malformed or too deeply nested ones are a 400, never a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = _json.loads(s, **kwargs)
        except RecursionError:
            raise BadRequest("The JSON body is nested too deeply.") from None
        except ValueError as e:
            raise BadRequest(f"The body is not valid JSON: {e}.") from None
        if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise BadRequest(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
        # A NUL can only arrive escaped (a raw one is invalid JSON): look only then.
        if ("u0000" in s if isinstance(s, str) else b"u0000" in s) and _has_nul(value):
            raise BadRequest(NUL_MESSAGE.format(where="The JSON body"))
        return value


NUL_MESSAGE = ("{where} contains a NUL character (\\u0000 or %00), which no text the tracker "
               "stores can hold: remove it and send the request again.")


def _has_nul(value: Any) -> bool:
    """Whether any string (key or value) in a decoded JSON document holds a NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def create_app(config: tracker_config.Config | None = None,
               services: Tracker | None = None) -> Flask:
    """Build the Flask app; builds the tracker services unless given (tests share them)."""
    from api import auth, errors, limits, pages
    from api.blueprints import allegations, audit, health, listing, users
    from api.blueprints import subscriptions as subscriptions_bp
    from api.openapi import ProblemResponses
    from api.schemas.outputs import ProblemOut

    cfg = config or (services.config if services else tracker_config.from_env())
    app = Flask(__name__)
    app.json = GuardedJSON(app)
    app.config.update(
        MAX_CONTENT_LENGTH=cfg.max_body_bytes,
        API_TITLE="Allegation Tracker",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/static/swagger-ui/",
        API_SPEC_OPTIONS={
            "info": {"description": "Record, review and audit allegations of human-rights "
                                    "violations. Authenticate with `Authorization: Bearer`."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    app.extensions["tracker"] = services or build(cfg)
    api = Api(app, spec_kwargs={"extra_plugins": [ProblemResponses()]})
    api.spec.components.schema("Problem", schema=ProblemOut)
    errors.init_app(app)
    health.init_app(app)
    limits.init_app(app, cfg.redis_url, cfg.write_rate, cfg.auth_failures_per_minute)
    auth.init_app(app)
    api.register_blueprint(allegations.bp)
    api.register_blueprint(users.bp)
    api.register_blueprint(audit.bp)
    api.register_blueprint(subscriptions_bp.bp)
    api.register_blueprint(listing.bp)
    listing.init_app(app)
    pages.init_app(app)
    app.register_blueprint(health.bp)

    @app.route("/static/swagger-ui/<path:name>")
    def swagger_assets(name: str) -> Response:
        """Vendored Swagger UI assets (no CDN)."""
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, name)

    @app.before_request
    def _no_nul() -> None:
        # PostgreSQL text cannot hold a NUL: refuse it up front, the same on every database.
        args = request.args.items(multi=True)
        form = request.form.items(multi=True) if request.mimetype in FORM_TYPES else ()
        views = (request.view_args or {}).items()
        for source, pairs in (("query parameter", args), ("form field", form),
                              ("path parameter", views)):
            for key, value in pairs:
                if "\x00" in key or (isinstance(value, str) and "\x00" in value):
                    raise BadRequest(NUL_MESSAGE.format(where=f"The {source} {key!r}"))

    @app.before_request
    def _json_only() -> None:
        if request.routing_exception is not None:
            return  # 404/405 first
        if request.method in ("POST", "PUT", "PATCH") and request.path.startswith("/v1/"):
            if request.content_length and request.content_length > cfg.max_body_bytes:
                from werkzeug.exceptions import RequestEntityTooLarge

                raise RequestEntityTooLarge()
            if not request.is_json:
                from werkzeug.exceptions import UnsupportedMediaType

                raise UnsupportedMediaType()

    from api.context import request_id

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        # One pass over the headers instead of a lookup (and a KeyError) per default.
        present = {key.lower() for key in headers.keys()}
        for key, value in SECURITY_HEADERS.items():
            if key.lower() not in present:
                headers.add(key, value)
        if request.path == "/docs" or request.path.startswith("/static/swagger-ui/"):
            headers["Content-Security-Policy"] = DOCS_CSP
        if "cache-control" in present:
            headers["Cache-Control"] = headers["Cache-Control"]  # the first one only
        else:
            headers.add("Cache-Control", "no-store")
        if "x-request-id" in present:
            headers["X-Request-Id"] = request_id()
        else:
            headers.add("X-Request-Id", request_id())
        return response

    return app
