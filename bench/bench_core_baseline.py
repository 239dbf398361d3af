"""The HTTP baseline: Flask, the same marshmallow schema, one plain sqlite3 row per submission.

Served by gunicorn with the tracker's own config: `bench.bench_core_baseline:create_app()`,
database file from BENCH_BASELINE_DB. Same journal (WAL) and synchronous (FULL) settings as
the event store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from typing import Any

from flask import Flask, Response, jsonify, request
from marshmallow import ValidationError

from api.schemas.inputs import SubmissionSchema

DDL = "CREATE TABLE IF NOT EXISTS submissions (id TEXT PRIMARY KEY, body BLOB NOT NULL)"


def connect(path: str) -> sqlite3.Connection:
    """A connection with the event store's settings: autocommit mode, WAL, synchronous FULL."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def create_app() -> Flask:
    """The baseline app; its connection is opened lazily, after gunicorn forks."""
    app = Flask(__name__)
    path = os.environ["BENCH_BASELINE_DB"]
    schema = SubmissionSchema()
    state: dict[str, sqlite3.Connection] = {}

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness."""
        return jsonify({"ok": True})

    @app.post("/v1/allegations")
    def submit() -> Any:
        """Validate with the tracker's schema and insert one row."""
        try:
            data = schema.load(request.get_json())
        except ValidationError as e:
            return jsonify({"errors": e.messages}), 422
        conn = state.get("conn") or state.setdefault("conn", connect(path))
        aid = str(uuid.uuid4())
        conn.execute("BEGIN")
        conn.execute("INSERT INTO submissions (id, body) VALUES (?, ?)",
                     (aid, json.dumps(data).encode()))
        conn.execute("COMMIT")
        return jsonify({"id": aid, **data}), 201

    return app
