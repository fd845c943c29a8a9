"""Fixtures for the agents tests (loaded by conftest.py)."""
