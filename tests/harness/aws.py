"""Harness for aws (being written)."""
