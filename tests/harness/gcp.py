"""Harness for gcp (being written)."""
