"""Provides the site's REST API: items, reads, ratings and "not interested" marks (Django REST framework)."""
