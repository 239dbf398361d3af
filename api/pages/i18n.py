"""English and French: the language of each request, the switch, and labels of domain codes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import Babel, get_locale
from flask_babel import lazy_gettext as _l

from api.pages import bp
from api.pages.session import safe_next, secure
from tracker import taxonomy

LANGUAGES = ("en", "fr")
LANG_COOKIE = "tracker_lang"
TRANSLATIONS = Path(__file__).parent / "translations"

STATUS = {
    "received": _l("Received"), "under_review": _l("Under review"),
    "needs_information": _l("Needs information"), "verified": _l("Verified"),
    "unverified": _l("Unverified"), "rejected": _l("Rejected"), "duplicate": _l("Duplicate"),
    "closed": _l("Closed"),
}
ROLE = {"monitor": _l("monitor"), "reviewer": _l("reviewer"), "auditor": _l("auditor"),
        "admin": _l("admin")}
EVENT = {
    "Submitted": _l("Submitted"), "InformationAdded": _l("Information added"),
    "SourceAdded": _l("Source added"), "EvidenceAttached": _l("Evidence attached"),
    "Assigned": _l("Assigned"), "StatusChanged": _l("Status changed"),
    "Commented": _l("Commented"), "OfficialResponseRecorded": _l("Official response recorded"),
    "PersonalDataErased": _l("Personal data erased"),
}
# The Admiralty (NATO) grading: reliability of the source, credibility of the information.
RELIABILITY = {
    "A": _l("completely reliable"), "B": _l("usually reliable"), "C": _l("fairly reliable"),
    "D": _l("not usually reliable"), "E": _l("unreliable"),
    "F": _l("reliability cannot be judged"),
}
CREDIBILITY = {
    1: _l("confirmed by other sources"), 2: _l("probably true"), 3: _l("possibly true"),
    4: _l("doubtful"), 5: _l("improbable"), 6: _l("truth cannot be judged"),
}
DATE_PRECISION = {"day": _l("to the day"), "month": _l("to the month"),
                  "year": _l("to the year")}
PLACE_PRECISION = {"exact": _l("exact"), "approximate": _l("approximate"),
                   "admin1": _l("to the region"), "country": _l("to the country")}
PERPETRATOR = {
    "state_forces": _l("state forces"), "armed_group": _l("armed group"),
    "militia": _l("militia"), "self_defence_group": _l("self-defence group"),
    "unknown": _l("unknown"), "other": _l("other"),
}
SOURCE = {
    "victim": _l("victim"), "witness": _l("witness"), "family": _l("family"),
    "media": _l("media"), "ngo_report": _l("NGO report"), "un_report": _l("UN report"),
    "official": _l("official"), "social_media": _l("social media"), "other": _l("other"),
}
PROTECTED = {
    "victim_names": _l("Victim names"), "witness_names": _l("Witness names"),
    "contacts": _l("Contacts"), "source_identity": _l("Source identity"), "notes": _l("Notes"),
}


def select_locale() -> str:
    """The language chosen with the switch, else the browser's preference, else English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def lang() -> str:
    """The language of this request ("en" or "fr")."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else "en"


def category(code: str) -> str:
    """A category's label in this request's language (taxonomy.json's label_fr in French)."""
    return taxonomy.labels(lang()).get(code, code)


def label(table: dict[Any, Any], code: Any) -> str:
    """The translated label of a code, or the code itself when unknown."""
    return str(table.get(code, code)) if code is not None else ""


def moment(value: str | None) -> str:
    """An ISO 8601 time as `YYYY-MM-DD HH:MM:SS UTC` (the same in every language)."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    return when.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if when.utcoffset() is not None else "")


def day(value: str | None, precision: str | None = "day") -> str:
    """An incident date as precise as it is known: 2018-05-14, 2018-05 or 2018."""
    if not value:
        return ""
    return {"month": value[:7], "year": value[:4]}.get(precision or "day", value)


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"STATUS": STATUS, "ROLE": ROLE, "EVENT": EVENT, "RELIABILITY": RELIABILITY,
            "CREDIBILITY": CREDIBILITY, "DATE_PRECISION": DATE_PRECISION,
            "PLACE_PRECISION": PLACE_PRECISION, "PERPETRATOR": PERPETRATOR, "SOURCE": SOURCE,
            "PROTECTED": PROTECTED, "category_label": category, "label": label,
            "lang": lang(), "moment": moment, "day": day}


@bp.route("/language/<code>")
def language(code: str) -> ResponseReturnValue:
    """Switch the pages' language (kept in a cookie, apart from the session) and go back."""
    target = safe_next(request.args.get("next")) or url_for("pages.index")
    response = redirect(target, 303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path="/",
                            secure=secure(), httponly=True, samesite="Lax")
    return response


def init_app(app: Flask) -> None:
    """Install Flask-Babel with the pages' catalogues."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    Babel(app, locale_selector=select_locale,
          default_translation_directories=str(TRANSLATIONS))
