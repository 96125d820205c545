"""Fixtures of the notification tests: the shared community comes from tests/conftest.py."""
