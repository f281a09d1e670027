"""PostgreSQL only: a GIN index on contact properties, for the admin's "has property" filter
(`properties ? 'name'`). SQLite has no such index type; the filter still works there, unindexed."""

from django.db import migrations

CREATE = "CREATE INDEX IF NOT EXISTS contact_properties_gin ON contacts_contact USING gin (properties)"
DROP = "DROP INDEX IF EXISTS contact_properties_gin"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("contacts", "0003_admin_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
