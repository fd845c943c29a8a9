"""Fixtures for the app tests (loaded by conftest.py)."""
