"""conversations/migrations: the models and the migrations agree, and 0002 (an index built
concurrently on PostgreSQL) goes both ways on SQLite and on PostgreSQL."""

import importlib
import io

import pytest
from django.core.management import call_command
from django.db import connection

INDEX = "message_pending_by_conv"


@pytest.mark.django_db
def test_the_models_need_no_migration_that_is_not_written():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 if one is missing
    assert "No changes detected" in out.getvalue()


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "conversations_message")
    return {name for name, info in constraints.items() if info["index"]}


def _sql_of_0002() -> str:
    out = io.StringIO()
    call_command("sqlmigrate", "conversations", "0002", stdout=out)
    return out.getvalue()


def _back_and_forth() -> None:
    try:
        call_command("migrate", "conversations", "0001", verbosity=0)
        assert INDEX not in _indexes()
    finally:
        call_command("migrate", "conversations", verbosity=0)
    assert INDEX in _indexes()


@pytest.mark.django_db(transaction=True)
def test_the_pending_index_migrates_both_ways():
    assert "CREATE INDEX" in _sql_of_0002()
    assert "CONCURRENTLY" not in _sql_of_0002()
    _back_and_forth()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_the_pending_index_migrates_both_ways_concurrently_on_postgresql(live_database_url):
    assert connection.vendor == "postgresql"
    assert "CREATE INDEX CONCURRENTLY" in _sql_of_0002()
    _back_and_forth()


@pytest.mark.django_db(transaction=True)
def test_the_tools_migration_gives_rows_with_the_old_default_instructions_the_tools_instructions():
    from django.db.migrations.executor import MigrationExecutor

    from conversations import defaults

    old = importlib.import_module("conversations.migrations.0006_tools").INSTRUCTIONS_BEFORE_TOOLS
    executor = MigrationExecutor(connection)
    executor.migrate([("conversations", "0005_operations")])
    try:
        settings_model = executor.loader.project_state(
            ("conversations", "0005_operations")
        ).apps.get_model("conversations", "RuntimeSettings")
        settings_model.objects.create(pk=1, assistant_instructions=old)
        settings_model.objects.create(pk=2, assistant_instructions="Nossas regras próprias.")
    finally:
        call_command("migrate", "conversations", verbosity=0)
    from conversations.models import RuntimeSettings

    kept = dict(RuntimeSettings.objects.values_list("pk", "assistant_instructions"))
    assert kept == {1: defaults.ASSISTANT_INSTRUCTIONS, 2: "Nossas regras próprias."}
