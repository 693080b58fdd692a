"""Provides the optional REST API of the recommendations app (needs djangorestframework and drf-spectacular)."""
