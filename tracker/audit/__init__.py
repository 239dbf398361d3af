"""Audit: the event log as an RFC 9162 Merkle tree, its proofs and signed tree heads."""
