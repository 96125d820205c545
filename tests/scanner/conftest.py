"""Fixtures of the scanner tests: the shared community and its passes come from tests/conftest.py."""
