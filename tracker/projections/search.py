"""Text search with the database's own index: SQLite FTS5 or a PostgreSQL tsvector (GIN).

A query matches an allegation holding every one of its words (no stemming); case and
accents are ignored. Queries are normalised in Python (lower case, accents removed, split
into letters and digits). Documents are normalised alike, except ASCII text on SQLite: its
`unicode61 remove_diacritics 2` tokenizer folds it to exactly the same words, so it is
indexed as written and Python does not pass over it.
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


def indexable(dialect: Dialect, *parts: str | None) -> str:
    """The text to index for these parts: `normalise`d, or as written where that is the same.

    SQLite's tokenizer splits ASCII text into runs of letters and digits and folds their
    case, which gives exactly the words `normalise` gives; other text (and every text for
    PostgreSQL, whose parser splits differently) goes through `normalise`.
    """
    if dialect == "sqlite":
        text = " ".join(p for p in parts if p)
        if text.isascii():
            return text
    return normalise(*parts)


def query_words(q: str) -> list[str]:
    """The words of a query, refused when it has none or too many."""
    words = normalise(q).split()
    if not words:
        raise ValidationError({"q": ["Give at least one word of letters or digits."]})
    if len(words) > MAX_QUERY_WORDS:
        raise ValidationError({"q": [f"Give at most {MAX_QUERY_WORDS} words."]})
    return words


def condition(dialect: Dialect, q: str, min_seq: int | None = None) -> tuple[str, list[Any]]:
    """A WHERE condition on `a` (allegation_list) that holds when every word matches.

    `min_seq` (SQLite): ask the full-text index only about rows from that `seq` on.
    """
    words = query_words(q)
    if dialect == "sqlite":
        # Each word quoted: FTS5 query syntax is never interpreted from user input.
        match = " ".join(f'"{w}"' for w in words)
        if min_seq is not None:
            return ("a.seq IN (SELECT rowid FROM allegation_search WHERE allegation_search"
                    " MATCH ? AND rowid >= ?)", [match, min_seq])
        return ("a.seq IN (SELECT rowid FROM allegation_search WHERE allegation_search MATCH ?)",
                [match])
    return "a.search @@ plainto_tsquery('simple', ?)", [" ".join(words)]


def insert_value(dialect: Dialect) -> str:
    """The VALUES placeholder of the search column for new rows (PostgreSQL only)."""
    return "to_tsvector('simple', ?)" if dialect == "postgres" else "?"


def write_new(cur: Cursor, docs: list[tuple[int, str]], bulk: bool = False) -> None:
    """Store (and unless `bulk`, index) the documents of new allegations, by `seq`.

    SQLite only: PostgreSQL computes the tsvector in the row's own INSERT.
    """
    if cur.dialect != "sqlite" or not docs:
        return
    cur.executemany("INSERT INTO allegation_docs (seq, body) VALUES (?, ?)", docs)
    if not bulk:
        cur.executemany("INSERT INTO allegation_search (rowid, body) VALUES (?, ?)", docs)


def append(cur: Cursor, additions: Iterable[tuple[int, str]], bulk: bool = False) -> None:
    """Add words to existing allegations' documents, by `seq` (unless `bulk`, indexed too)."""
    rows = [(seq, text) for seq, text in additions if text]
    if not rows:
        return
    if cur.dialect == "postgres":
        cur.executemany("UPDATE allegation_list SET search = search || to_tsvector('simple', ?)"
                        " WHERE seq = ?", [(text, seq) for seq, text in rows])
        return
    for seq, text in rows:
        old = cur.scalar("SELECT body FROM allegation_docs WHERE seq = ?", (seq,)) or ""
        new = f"{old} {text}".strip()
        if not bulk:  # an external-content index forgets a row by being given its old text
            cur.execute("INSERT INTO allegation_search (allegation_search, rowid, body)"
                        " VALUES ('delete', ?, ?)", (seq, old))
        cur.execute("UPDATE allegation_docs SET body = ? WHERE seq = ?", (new, seq))
        if not bulk:
            cur.execute("INSERT INTO allegation_search (rowid, body) VALUES (?, ?)", (seq, new))
