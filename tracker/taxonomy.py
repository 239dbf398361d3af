"""The category taxonomy, kept as data in taxonomy.json (extend it there)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def taxonomy() -> dict[str, Any]:
    """The whole taxonomy document."""
    text = resources.files("tracker").joinpath("taxonomy.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def category_codes() -> frozenset[str]:
    """Every valid category code."""
    return frozenset(c["code"] for g in taxonomy()["groups"] for c in g["categories"])


@cache
def labels(lang: str = "en") -> dict[str, str]:
    """Category code to human label, in English or French."""
    key = "label_fr" if lang == "fr" else "label"
    return {
        c["code"]: c.get(key, c["label"]) for g in taxonomy()["groups"] for c in g["categories"]
    }
