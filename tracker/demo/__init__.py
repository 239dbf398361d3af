"""Example data: `tracker demo`'s allegations, and one sample submission."""

from __future__ import annotations

from typing import Any

# One realistic submission (with placeholder personal data to seal), as a monitor sends it:
# the tests' and the benchmarks' standard body.
SAMPLE_REPORT: dict[str, Any] = {
    "summary": "Men detained at a checkpoint near Gao and not seen since",
    "description": "It is alleged that three men were arrested at a checkpoint by armed men "
                   "and taken to an unknown location. Families have had no news since.",
    "categories": ["arbitrary_arrest_detention", "enforced_disappearance"],
    "incident": {
        "date": "2018-05-14", "date_precision": "day",
        "location": {"country": "ML", "admin1": "Gao", "place": "Gao checkpoint",
                     "lat": 16.27, "lon": -0.04, "precision": "approximate"},
    },
    "source": {"type": "family", "reliability": "B", "credibility": 2,
               "description": "A relative of one of the men, interviewed by phone"},
    "alleged_perpetrators": [{"name": "Unidentified armed group", "type": "armed_group"}],
    "victims": {"count": 3, "children": 0, "female": 0, "male": 3, "unknown_sex": 0,
                "groups": ["civilians"]},
    "protected": {"victim_names": ["Zeta Placeholder-Victim"],
                  "witness_names": ["Omega Placeholder-Witness"],
                  "contacts": ["+223 00 00 00 00"], "source_identity": "Cousin of victim 1"},
    "consent": {"share_with_partners": True, "identify_victims": False},
    "language": "en",
}
