"""Allegation Tracker: event-sourced allegations with provenance, audit and protection."""
