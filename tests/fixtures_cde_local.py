"""Fixtures for the cde_local tests (loaded by conftest.py)."""
