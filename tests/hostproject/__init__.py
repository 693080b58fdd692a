"""A second, tiny Django project ("a shop") that uses the recommendations app without any BRE code.

It proves the app is reusable (issue 4, "Drop-in proof"): different item and interaction
models, a custom user model with a UUID primary key, its own ``RECOMMENDATIONS`` and its own
Celery app. Its tests run in their own pytest process (see tests/test_hostproject.py).
"""
