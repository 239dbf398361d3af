"""Statistics computed by the database (GROUP BY over the views), with the position they hold.

An allegation counts once per group: grouped by category, an allegation of two categories
counts in both groups. `victims` and `children` sum the victims counts given at submission.
Grouped by perpetrator, allegations without one fall in the group whose key is null.
"""

from __future__ import annotations

from typing import Any

from tracker import policy
from tracker.domain.errors import ValidationError
from tracker.domain.values import Actor
from tracker.persistence.db import Database
from tracker.projections.filters import Filters, category_join, perpetrator_join, where
from tracker.projections.listing import snapshot
from tracker.projections.tracking import read_position

# dimension -> the column it groups by (`month`: the incident's month, YYYY-MM)
DIMENSIONS: dict[str, str] = {
    "category": "c.category",
    "country": "a.country",
    "admin1": "a.admin1",
    "perpetrator": "p.name",
    "perpetrator_type": "p.type",
    "status": "a.status",
    "month": "a.incident_month",
}


def dimensions(group_by: list[str] | tuple[str, ...]) -> list[str]:
    """The requested dimensions in order, once each; unknown ones refused."""
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown:
        raise ValidationError({"group_by": [
            f"Unknown dimension(s): {', '.join(unknown)}; use a comma-separated subset of "
            f"{', '.join(DIMENSIONS)}."]})
    return list(dict.fromkeys(group_by))


def stats_sql(f: Filters, actor: Actor, dialect: Any, dims: list[str]) -> tuple[str, list[Any]]:
    """The GROUP BY query of `dims` under the filters, and its parameters."""
    params: list[Any] = []
    joins, joined = [], set()
    if "category" in dims:
        joins.append(category_join(f, params))
        joined.add("category")
    if {"perpetrator", "perpetrator_type"} & set(dims):
        joins.append(perpetrator_join(f, params))
        joined.add("perpetrator")
    cond = where(f, actor, dialect, params, frozenset(joined))
    keys = [f"d{i}" for i in range(len(dims))]
    picked = "".join(f", {DIMENSIONS[d]} AS {k}" for d, k in zip(dims, keys, strict=True))
    # One row per allegation and group: perpetrators may repeat a name (or a type) within
    # an allegation, so their join needs DISTINCT; categories are unique per allegation.
    distinct = "DISTINCT " if "perpetrator" in joined else ""
    inner = (f"SELECT {distinct}a.seq, a.victims, a.children{picked} FROM allegation_list a "
             f"{' '.join(joins)} WHERE {cond}")
    sql = ("SELECT " + "".join(f"{k}, " for k in keys)
           + "COUNT(*) AS allegations, CAST(COALESCE(SUM(victims), 0) AS BIGINT) AS victims,"
           " CAST(COALESCE(SUM(children), 0) AS BIGINT) AS children FROM (" + inner + ") t")
    if keys:
        sql += (f" GROUP BY {', '.join(keys)} ORDER BY "
                + ", ".join(f"{k} IS NULL, {k}" for k in keys))
    return sql, params


def stats(db: Database, actor: Actor, filters: Filters,
          group_by: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """`{position, groups: [{key, allegations, victims, children}]}` at one views position."""
    policy.require(actor, "stats")
    dims = dimensions(group_by)
    sql, params = stats_sql(filters, actor, db.dialect, dims)
    with db.read() as cur:
        snapshot(cur)
        position = read_position(cur)
        rows = cur.execute(sql, params).fetchall()
    groups = [{"key": {d: row[f"d{i}"] for i, d in enumerate(dims)},
               "allegations": int(row["allegations"]), "victims": int(row["victims"]),
               "children": int(row["children"])} for row in rows]
    return {"position": position, "groups": groups}
