"""Reading the pages' forms with the API's own schemas, so both accept exactly the same values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from api.errors import flatten
from api.schemas import inputs, listing

MULTI = ("status", "category", "country")
SINGLE = ("admin1", "perpetrator", "assignee", "submitted_from", "submitted_to",
          "incident_from", "incident_to", "q")
PAGE_SIZE = 25


def _values(args: MultiDict[str, str]) -> dict[str, str]:
    """The non-empty filter values as the API's query string would carry them."""
    data: dict[str, str] = {}
    for name in MULTI:
        parts = [p.strip() for v in args.getlist(name) for p in v.split(",") if p.strip()]
        if name == "country":
            parts = [p.upper() for p in parts]
        if parts:
            data[name] = ",".join(dict.fromkeys(parts))
    for name in SINGLE:
        value = args.get(name, "").strip()
        if value:
            data[name] = value
    return data


def list_query(args: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Filters, `limit` and `cursor` for the list, or the problems with them."""
    data: dict[str, Any] = _values(args)
    data["limit"] = args.get("limit", "").strip() or str(PAGE_SIZE)
    if args.get("cursor"):
        data["cursor"] = args["cursor"]
    return _load(listing.ListQuerySchema(), data)


def stats_query(args: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Filters for the statistics, or the problems with them."""
    return _load(listing.StatsQuerySchema(), _values(args))


def _load(schema: ma.Schema, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    try:
        return dict(schema.load(data)), {}
    except ma.ValidationError as e:
        return {}, flatten(e.messages)


def chosen(args: MultiDict[str, str]) -> dict[str, Any]:
    """What the filter form shows as selected: lists for the multi-valued fields."""
    data = _values(args)
    shown: dict[str, Any] = {name: data.get(name, "") for name in SINGLE}
    for name in MULTI:
        shown[name] = data[name].split(",") if name in data else []
    shown["country"] = ", ".join(shown["country"])
    return shown


def active(args: MultiDict[str, str]) -> int:
    """How many filters are set (the filter form opens when any is)."""
    return len(_values(args))


def page_url(path: str, args: MultiDict[str, str], cursor: str | None) -> str:
    """This list's URL with the same filters, at another page (None: the first)."""
    pairs = [(k, v) for k, v in args.items(multi=True) if k != "cursor" and v.strip()]
    if cursor:
        pairs.append(("cursor", cursor))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def load(schema: ma.Schema, form: Mapping[str, Any]
         ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A posted form through an API input schema: (values, problems by field)."""
    fields = schema.fields
    data = {k: v for k, v in form.items() if k in fields and v != ""}
    if "expected_version" in data:
        try:
            data["expected_version"] = int(data["expected_version"])
        except ValueError:
            return {}, {"expected_version": ["Not a number."]}
    return _load(schema, data)


def status_change(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The status form: status, reason, duplicate_of and expected_version."""
    return load(inputs.StatusChangeSchema(), form)


def assignment(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The assign form."""
    return load(inputs.AssignmentSchema(), form)


def comment(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The comment form."""
    return load(inputs.CommentSchema(), form)
