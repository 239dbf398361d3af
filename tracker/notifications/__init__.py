"""Notifications (SPEC §4): pure rules, subscriptions and delivery records (no queue here)."""
