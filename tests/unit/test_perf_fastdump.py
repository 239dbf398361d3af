"""The compiled dump of the API's output schemas answers exactly what marshmallow answers."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import marshmallow as ma
import pytest
from marshmallow import fields as f

from api.schemas import outputs as o
from api.schemas.fastdump import compile_dump
from tracker.bootstrap import Tracker


def _same(schema: ma.Schema, obj: Any) -> Any:
    fast = compile_dump(schema)(obj)
    slow = schema.dump(obj)
    assert fast == slow
    assert type(fast) is type(slow)
    assert list(fast) == list(slow)  # same keys, same order
    return fast


def _states(services: Tracker, make_user: Any, report: dict[str, Any]) -> list[dict[str, Any]]:
    app = services.app
    monitor = make_user("monitor")
    reviewer = make_user("reviewer", "un-office")
    admin = make_user("admin", "hq")
    states = []
    first = app.submit(monitor.actor, report, "r1")
    states.append(first.state)
    aid = first.state["id"]
    minimal = {k: report[k] for k in ("summary", "description", "categories", "incident",
                                      "source")}
    states.append(app.submit(monitor.actor, minimal, "r2", "key-1").state)
    states.append(app.assign(reviewer.actor, aid, reviewer.id, "r3").state)
    states.append(app.comment(reviewer.actor, aid, "a comment", "r4").state)
    states.append(app.add_information(monitor.actor, aid, "more", report["source"],
                                      {"notes": "secret"}, "r5").state)
    states.append(app.attach_evidence(monitor.actor, aid, {
        "sha256": "a" * 64, "media_type": "image/jpeg", "size": 3, "description": "photo"},
        "r6").state)
    for who in (monitor, reviewer, admin):
        states.append(app.get(who.actor, aid))
    states.append(app.erase(admin.actor, aid, "asked", "r7").state)
    states.append(app.get(reviewer.actor, aid))
    return states


def test_allegation_states_dump_as_marshmallow_does(services: Tracker, make_user: Any,
                                                      report: dict[str, Any]) -> None:
    out = o.AllegationOut()
    assert compile_dump(out) != out.dump  # the fast path is in use for this schema
    for state in _states(services, make_user, report):
        _same(out, state)


def test_odd_values_fall_back_to_marshmallow(services: Tracker, make_user: Any,
                                              report: dict[str, Any]) -> None:
    out = o.AllegationOut()
    state = _states(services, make_user, report)[0]
    odd: list[dict[str, Any]] = []
    for path, value in [
        (("version",), True),                                # bool in an integer field
        (("version",), 3.0),                                 # float in an integer field
        (("incident", "location", "lat"), 12),               # int in a float field
        (("categories",), ("a", "b")),                       # tuple for a list
        (("summary",), b"bytes"),                            # bytes for a string
        (("summary",), 42),                                  # a number for a string
        (("consent",), {"share_with_partners": 1}),          # non-bool in a bool dict
        (("incident",), OrderedDict(date="2024-01-01")),     # a dict subclass
        (("victims",), None),                                # None for a nested object
        (("sources",), None),                                # None for a list
        (("protected",), {"notes": "x", "other": "y"}),      # an undeclared key
    ]:
        changed = copy.deepcopy(state)
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        odd.append(changed)
    missing = copy.deepcopy(state)
    del missing["incident"]["location"], missing["language"]
    odd.append(missing)
    for state in odd:
        _same(out, state)


class _Hooked(ma.Schema):
    name = f.String()

    @ma.post_dump
    def _upper(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: v.upper() for k, v in data.items()}


class _Defaulted(ma.Schema):
    name = f.String(dump_default="x")


class _Renamed(ma.Schema):
    name = f.String(data_key="nom")
    copy = f.String()  # a dict attribute: marshmallow reads a missing key as `dict.copy`


@pytest.mark.parametrize("schema", [_Hooked(), _Defaulted(), _Renamed()])
def test_unsupported_schemas_use_marshmallow(schema: ma.Schema) -> None:
    assert compile_dump(schema) == schema.dump
    for obj in ({"name": "a"}, {}):
        _same(schema, obj)


class _Keyed(ma.Schema):
    name = f.String(data_key="nom")
    size = f.Float(allow_none=True)


def test_data_keys_are_kept() -> None:
    schema = _Keyed()
    assert compile_dump(schema) != schema.dump
    for obj in ({"name": "a", "size": 1.5}, {"size": None}, {"size": 2}, {}):
        _same(schema, obj)
