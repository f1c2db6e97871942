from django.db import migrations, models

from conversations.migrations._concurrently import AddIndexConcurrentlyOnPostgreSQL


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
