"""Recovery policies: which action an attempt takes (`decision.py`), the static order and the learned one."""
