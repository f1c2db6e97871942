"""The indexes that issues 14 and 16 added to the message, turn and conversation tables, and the
unique constraint on Message.wamid_hash, built CONCURRENTLY on PostgreSQL: an upgrade of a
deployment whose tables hold millions of rows keeps storing webhooks and running turns while they
build (conversations/migrations/_concurrently.py)."""

from django.db import migrations, models

from conversations.migrations._concurrently import (
    AddIndexConcurrentlyOnPostgreSQL,
    AddUniqueConstraintConcurrentlyOnPostgreSQL,
)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("conversations", "0011_hourly_rollups"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="conversation",
            index=models.Index(fields=["created_at"], name="conversation_created"),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(("first_staff_reply_at__isnull", False)),
                fields=["first_staff_reply_at"],
                name="conversation_staff_replied",
            ),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="message",
            index=models.Index(fields=["created_at", "direction", "kind"], name="message_created"),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="turn",
            index=models.Index(fields=["started_at"], name="turn_started"),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="turn",
            index=models.Index(
                condition=models.Q(("outcome", "running")),
                fields=["started_at"],
                name="turn_running",
            ),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="message",
            index=models.Index(
                condition=models.Q(("redacted_at__isnull", True)),
                fields=["created_at"],
                name="message_content_kept",
            ),
        ),
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="message",
            index=models.Index(
                condition=models.Q(("media_file", ""), _negated=True),
                fields=["created_at"],
                name="message_media_kept",
            ),
        ),
        AddUniqueConstraintConcurrentlyOnPostgreSQL(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=["wamid_hash"], name="message_wamid_hash_unique"
            ),
        ),
    ]
