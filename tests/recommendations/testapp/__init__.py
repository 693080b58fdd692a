"""Tiny item and interaction models the recommendations tests use instead of ``articles``."""
