"""Every string the pages translate has a French translation (the pages are EN/FR)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo

PAGES = Path(__file__).parents[2] / "api" / "pages"


def test_every_page_string_has_a_french_translation() -> None:
    catalog = read_mo((PAGES / "translations/fr/LC_MESSAGES/messages.mo").open("rb"))
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None}
    missing = []
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(PAGES), method_map, keywords=keywords):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if not msgid:
                continue
            entry = catalog.get(msgid)
            if entry is None or not entry.string:
                missing.append(f"{filename}:{lineno}: {msgid!r}")
    assert not missing, "untranslated (add to messages.po, then pybabel compile):\n" + "\n".join(
        missing)
