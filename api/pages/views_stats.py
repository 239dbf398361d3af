"""Statistics by category, region and month: tables and bar charts drawn as SVG on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, make_response, render_template, request
from flask_babel import gettext as _

from api.pages import bp, common, forms, i18n
from api.pages.session import signed_in
from tracker import policy
from tracker.domain.values import STATUSES
from tracker.projections import Filters
from tracker.taxonomy import taxonomy

CHART_WIDTH = 480  # SVG user units (= CSS pixels at full size; narrower screens scale it)
ROW = 40  # height of one labelled bar
BAR = 14


@dataclass(frozen=True)
class Bar:
    """One row of a chart and of its table."""

    label: str
    allegations: int
    victims: int
    children: int
    y: int = 0
    width: float = 0.0


@dataclass(frozen=True)
class Chart:
    """A titled horizontal bar chart with its rows."""

    key: str
    title: str
    dimension: str
    bars: list[Bar]
    height: int
    width: int = CHART_WIDTH
    bar_height: int = BAR


def chart(key: str, title: str, dimension: str, rows: list[tuple[str, dict[str, Any]]]
          ) -> Chart:
    """Lay out bars proportional to the number of allegations (the longest fills the width)."""
    top = max((g["allegations"] for _, g in rows), default=0) or 1
    usable = CHART_WIDTH - 50  # room for the count after the bar
    bars = [Bar(label, g["allegations"], g["victims"], g["children"], y=i * ROW,
                width=round(max(1.0, usable * g["allegations"] / top), 1))
            for i, (label, g) in enumerate(rows)]
    return Chart(key, title, dimension, bars, height=max(ROW, len(bars) * ROW))


def _by_count(rows: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(rows, key=lambda r: (-r[1]["allegations"], r[0]))


def charts(filters: Filters) -> tuple[list[Chart], int]:
    """The three charts and the views position they were computed at."""
    who = common.me()
    v = common.views()
    unknown = _("(not given)")
    by_category = v.stats(who, filters, ["category"])
    by_region = v.stats(who, filters, ["country", "admin1"])
    by_month = v.stats(who, filters, ["month"])
    categories = [(i18n.category(g["key"]["category"]), g) for g in by_category["groups"]]
    regions = [(f"{g['key']['admin1'] or unknown} ({g['key']['country'] or '?'})", g)
               for g in by_region["groups"]]
    months = [(g["key"]["month"] or unknown, g) for g in by_month["groups"]]
    position = min(by_category["position"], by_region["position"], by_month["position"])
    return [chart("category", _("By category"), _("Category"), _by_count(categories)),
            chart("region", _("By region (admin1)"), _("Region"), _by_count(regions)),
            chart("month", _("By month of the incident"), _("Month"), months)], position


@bp.route("/statistics")
@signed_in
def statistics() -> Response:
    """Counts of allegations, victims and children, with the list's filters."""
    who = common.me()
    policy.require(who, "stats")
    query, problems = forms.stats_query(request.args)
    result: tuple[list[Chart], int] | None = None
    behind = False
    if not problems:
        query.pop("group_by", None)
        behind = common.views_behind()
        result = charts(Filters.of(query))
    html = render_template("stats.html", charts=result[0] if result else [],
                           position=result[1] if result else None, problems=problems,
                           chosen=forms.chosen(request.args), active=forms.active(request.args),
                           statuses=STATUSES,
                           groups=taxonomy()["groups"], reviewers=common.reviewers(),
                           behind=behind)
    return make_response(html, 422 if problems else 200)
