"""Store build artifacts uncompressed on PostgreSQL (``STORAGE EXTERNAL``).

They are fitted models and matrices: mostly float32 values, which PostgreSQL's TOAST compression
(pglz) scans and then gives up on (a 30 MB model was stored at its full size), at about 0.6 s per
30 MB written. Out of line and uncompressed, a write and a worker's read copy the bytes only.
Other databases have no such setting: nothing to do there.
"""
from django.db import migrations


def _set_storage(storage):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        model = apps.get_model("recommendations", "BuildArtifact")
        qn = schema_editor.quote_name
        schema_editor.execute(
            f"ALTER TABLE {qn(model._meta.db_table)} ALTER COLUMN {qn(model._meta.get_field('data').column)} "
            f"SET STORAGE {storage}"
        )

    return run


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0005_result_rows_without_db_constraints")]

    operations = [migrations.RunPython(_set_storage("EXTERNAL"), _set_storage("EXTENDED"), elidable=False)]
