"""Property-based tests generated from the app's own /openapi.json: no 5xx, responses as documented.

The app is built once for this module, on its own store (a temporary SQLite file, or the
`tracker_schemathesis` database when the suite runs on PostgreSQL), so generated requests
never disturb other tests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api import create_app
from tests.conftest import PG_URL, REPORT, _reset_postgres
from tracker.config import Config
from tracker.projections import start_thread

_DIR = tempfile.mkdtemp(prefix="tracker-schemathesis-")
_PG = PG_URL.rsplit("/", 1)[0] + "/tracker_schemathesis" if PG_URL else ""
if _PG:
    _reset_postgres(_PG)
# Schemathesis probes without credentials many times: lift the failed-authentication limit.
APP = create_app(Config(data_dir=Path(_DIR), database_url=_PG, write_rate=0,
                        auth_failures_per_minute=10**9))
_users = APP.extensions["tracker"].users
_admin, ADMIN_TOKEN = _users.add("Schema Admin", "admin", "hq")
_monitor, MONITOR_TOKEN = _users.add("Schema Monitor", "monitor", "hq")
APP.test_client().post("/v1/allegations", json=REPORT,
                       headers={"Authorization": f"Bearer {MONITOR_TOKEN}"})

# The views follow the log, as in production, so `min_position` waits are answered.
start_thread(APP.extensions["tracker"], poll_interval=0.05)

schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_every_operation_conforms(case):
    # Schema-valid bodies may still break cross-field rules (a date or a range, consistent victim
    # counts) that JSON Schema does not express: those answer 422, as documented.
    # A case whose headers are negative on purpose (Authorization missing or mangled) is sent
    # as generated: adding a valid token would turn it into an accepted "invalid" request.
    negative_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    headers = {} if negative_headers else {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
