"""Plain-SQL INSERT and UPDATE of one row, for the rows every turn writes (the turn, its reply).

Model.save() and QuerySet.update() cost 0.25-0.4 ms of CPU per row on our machines (pre-save
hooks, the SQL compiler), two to three times the statement itself. These build the same
statements from the model's own fields, once per model: every value goes through its field's
get_db_prep_save, so JSON, datetimes and choices reach the database exactly as with save(), and
auto_now/auto_now_add fields are filled as save() fills them. No model signals are sent: none are
connected to the models written here (tests/test_rows.py checks that).
"""

from functools import cache

from django.db import connection
from django.db.models import Model
from django.utils import timezone


@cache
def _insert_plan(model: type[Model], vendor: str) -> tuple[str, list]:
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    # Only the model's own table and column names, quoted, go into the text; values are parameters.
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(  # noqa: S608
        quote(opts.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        quote(opts.pk.column),
    )
    return sql, fields


def _stamped(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


def insert(instance: Model) -> Model:
    """INSERT a new model instance (primary key chosen by the database) and set its pk."""
    sql, fields = _insert_plan(type(instance), connection.vendor)
    now = timezone.now()
    for field in fields:
        if _stamped(field):
            setattr(instance, field.attname, now)
    values = [
        field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def update(model: type[Model], pk, **values) -> int:
    """UPDATE one row by primary key; auto_now fields not given are set to now. Returns the
    number of rows changed (0: the row is gone)."""
    opts = model._meta
    now = timezone.now()
    for field in opts.concrete_fields:
        if getattr(field, "auto_now", False) and field.name not in values:
            values[field.name] = now
    fields = [opts.get_field(name) for name in values]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 (as in _insert_plan)
        quote(opts.db_table),
        ", ".join(f"{quote(f.column)} = %s" for f in fields),
        quote(opts.pk.column),
    )
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk])
        return cursor.rowcount
