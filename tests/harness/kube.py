"""Harness for kube (being written)."""
