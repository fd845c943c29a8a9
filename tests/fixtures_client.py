"""Fixtures for the client tests (loaded by conftest.py)."""
