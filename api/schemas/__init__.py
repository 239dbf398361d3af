"""Marshmallow schemas at the edge: input schemas apart from output schemas."""
