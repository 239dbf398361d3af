"""The example data set is valid input for the API, item by item."""

from __future__ import annotations

import json
from importlib import resources


def test_every_demo_allegation_is_accepted_by_the_api(client, monitor):
    items = json.loads(resources.files("tracker.demo").joinpath("allegations.json").read_text())
    assert len(items) == 12
    for item in items:
        r = client.post("/v1/allegations", json=item, headers=monitor.headers)
        assert r.status_code == 201, (item["summary"], r.get_json())
