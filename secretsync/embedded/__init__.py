"""Embedded providers that need no cloud: ``memory`` (in-process) and ``file`` (encrypted file)."""
