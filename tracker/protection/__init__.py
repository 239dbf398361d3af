"""Protection of people: sealed personal data, per-allegation keys, redaction."""
