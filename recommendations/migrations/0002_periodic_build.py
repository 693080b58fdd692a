"""Kept for the migration history; it installs nothing any more.

It once installed the periodic tasks and depended on django-celery-beat when that app was
installed, so adding beat later made ``migrate`` fail. ``recommendations.schedule`` now installs
them after every ``migrate`` (a ``post_migrate`` hook), and this migration depends on nothing
outside the app.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0001_initial")]

    operations = []
