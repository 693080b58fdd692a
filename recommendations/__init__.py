"""A reusable Django app for collaborative and content-based recommendations.

This package imports nothing from Django at module level, so that
``python -m recommendations`` runs its command line with no database.
"""
