"""Schema operations that build indexes without blocking writes on PostgreSQL.

A plain CREATE INDEX (or a UNIQUE constraint, which builds one) holds a lock that stops every
INSERT and UPDATE on the table until the build ends: on a deployment's message table, minutes in
which webhooks wait and turns stall. CONCURRENTLY builds while writes go on; it cannot run in a
transaction, so a migration using these sets `atomic = False`. SQLite has no other kind: there they
run as the plain operation. (The leading underscore keeps Django's loader from taking this module
for a migration.)
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations.operations import AddConstraint, AddIndex


def _on_postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL; a plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _on_postgresql(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddUniqueConstraintConcurrentlyOnPostgreSQL(AddConstraint):
    """A plain UniqueConstraint (fields only) whose index PostgreSQL builds CONCURRENTLY, then
    attaches as the constraint (a lock of an instant); the plain AddConstraint elsewhere."""

    def __init__(self, model_name, constraint):
        if constraint.condition or constraint.expressions or constraint.include:
            raise ValueError("only a UniqueConstraint over plain fields")
        super().__init__(model_name, constraint)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        quote = schema_editor.quote_name
        table, name = quote(model._meta.db_table), quote(self.constraint.name)
        columns = ", ".join(
            quote(model._meta.get_field(field).column) for field in self.constraint.fields
        )
        schema_editor.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ({columns})")
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")
        return None

    def describe(self):
        return f"Create unique constraint {self.constraint.name} concurrently on PostgreSQL"
