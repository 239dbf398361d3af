"""Example data for `tracker demo`."""
