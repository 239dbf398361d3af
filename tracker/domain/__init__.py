"""The domain: the Allegation aggregate, its values and its errors."""
