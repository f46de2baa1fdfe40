"""The fault suite: real servers under outages, throttles, restarts, kill -9 and bad input."""
