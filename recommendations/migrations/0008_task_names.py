"""Kept for the migration history; it renames nothing any more.

It once renamed the beat rows' task names and depended on django-celery-beat when that app was
installed. ``recommendations.schedule`` now renames them after every ``migrate``, and this
migration depends on nothing outside the app.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0007_explanation_as_text")]

    operations = []
