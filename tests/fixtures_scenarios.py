"""Fixtures for the scenarios tests (loaded by conftest.py)."""
