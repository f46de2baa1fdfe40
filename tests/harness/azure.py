"""Harness for azure (being written)."""
