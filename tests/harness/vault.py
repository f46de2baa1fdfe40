"""Harness for vault (being written)."""
