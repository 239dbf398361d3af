"""Text search with the database's own index: SQLite FTS5 or a PostgreSQL tsvector (GIN).

Text is normalised in Python before indexing and querying (lower case, accents removed,
split into letters and digits) so both databases tokenise, and therefore match, alike.
A query matches an allegation holding every one of its words (no stemming).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from tracker.domain.errors import ValidationError
from tracker.persistence.db import Cursor, Dialect

_WORD = re.compile(r"[^\W_]+")
# Combining marks left by NFKD: Latin, Cyrillic and Greek accents, Arabic vowel signs.
_MARKS = re.compile("[\u0300-\u036f\u0483-\u0489\u064b-\u065f\u0670\u1ab0-\u1aff"
                    "\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
MAX_QUERY_WORDS = 20


def normalise(*parts: str | None) -> str:
    """Lower-cased, accent-free words of the parts, separated by single spaces."""
    text = " ".join(p for p in parts if p).casefold()
    if not text.isascii():
        text = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(_WORD.findall(text))


def query_words(q: str) -> list[str]:
    """The words of a query, refused when it has none or too many."""
    words = normalise(q).split()
    if not words:
        raise ValidationError({"q": ["Give at least one word of letters or digits."]})
    if len(words) > MAX_QUERY_WORDS:
        raise ValidationError({"q": [f"Give at most {MAX_QUERY_WORDS} words."]})
    return words


def condition(dialect: Dialect, q: str) -> tuple[str, list[Any]]:
    """A WHERE condition on `a` (allegation_list) that holds when every word matches."""
    words = query_words(q)
    if dialect == "sqlite":
        # Each word quoted: FTS5 query syntax is never interpreted from user input.
        match = " ".join(f'"{w}"' for w in words)
        return ("a.seq IN (SELECT rowid FROM allegation_search WHERE allegation_search MATCH ?)",
                [match])
    return "a.search @@ plainto_tsquery('simple', ?)", [" ".join(words)]


def insert_value(dialect: Dialect) -> str:
    """The VALUES placeholder of the search column for new rows (PostgreSQL only)."""
    return "to_tsvector('simple', ?)" if dialect == "postgres" else "?"


def write_new(cur: Cursor, docs: Iterable[tuple[int, str]]) -> None:
    """Index the documents of new allegations, by `seq` (SQLite; PostgreSQL does it inline)."""
    if cur.dialect == "sqlite":
        cur.executemany("INSERT INTO allegation_search (rowid, body) VALUES (?, ?)", list(docs))


def append(cur: Cursor, additions: Iterable[tuple[int, str]]) -> None:
    """Add words to existing allegations' documents, by `seq`."""
    rows = [(seq, text) for seq, text in additions if text]
    if not rows:
        return
    if cur.dialect == "postgres":
        cur.executemany("UPDATE allegation_list SET search = search || to_tsvector('simple', ?)"
                        " WHERE seq = ?", [(text, seq) for seq, text in rows])
        return
    for seq, text in rows:
        old = cur.scalar("SELECT body FROM allegation_search WHERE rowid = ?", (seq,)) or ""
        cur.execute("DELETE FROM allegation_search WHERE rowid = ?", (seq,))
        cur.execute("INSERT INTO allegation_search (rowid, body) VALUES (?, ?)",
                    (seq, f"{old} {text}".strip()))
