"""Benchmarks that print figures: `python -m bench heal` (see bench/heal.py)."""
