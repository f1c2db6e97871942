from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, so a deploy does not hold every webhook's and
    every turn's write to a large message table while the index builds; a plain CREATE INDEX
    elsewhere (SQLite has no other kind)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("conversations", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="message",
            index=models.Index(
                condition=models.Q(("direction", "in"), ("state", "pending")),
                fields=["conversation", "created_at"],
                name="message_pending_by_conv",
            ),
        ),
    ]
