"""Persistence: the event store's recorders with the audit tree and keys in the same transaction."""
