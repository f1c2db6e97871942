"""Plain-SQL INSERT and UPDATE of one row, only on the two paths whose targets the ORM misses
(figures in BENCHMARKS.md); everywhere else, including the same work on SQLite, uses the ORM:

- ingest on PostgreSQL (conversations.webhook.ingest, one query per message): through the ORM
  the statements cost 1.9 ms of CPU per message against 0.5 ms, on a web process whose whole
  CPU per request at 779 req/s is 1.08 ms (section "Ingest");
- a turn on PostgreSQL (the turn row and its reply, sent as the turn's multi-statement queries):
  Model.save() and QuerySet.update() cost 0.25-0.4 ms of CPU per row, two to three times the
  statement, against an engine overhead target of p95 under 6 ms with ~5 rows written per turn
  (section "c) Engine overhead per turn").

The ORM's cost is its pre-save hooks and SQL compiler. These functions build the same statements from the model's own fields, once per model: every value goes through its field's
get_db_prep_save, so JSON, datetimes and choices reach the database exactly as with save(), and
auto_now/auto_now_add fields are filled as save() fills them. No model signals are sent: none are
connected to the models written here (tests/test_rows.py checks that).
"""

from functools import cache

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

Statement = tuple[str, list]  # SQL with %s placeholders, and its parameters


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


def insert_statement(instance: Model) -> "Statement":
    """INSERT of a new model instance (the database picks the primary key, returned as its one
    row); fills the instance's auto_now/auto_now_add fields."""
    sql, fields = _insert_plan(type(instance), connection.vendor)
    now = timezone.now()
    for field in fields:
        if _stamped(field):
            setattr(instance, field.attname, now)
    return sql, [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in fields]


def insert_select_statement(
    instance: Model, source: Statement, expressions: dict[str, str], on_conflict: str = ""
) -> Statement:
    """INSERT ... SELECT ... FROM `source`: as insert_statement, but the fields named in
    `expressions` (by attname) take an SQL expression over `source` (a FROM clause and its
    parameters) instead of a value. RETURNING the primary key, then those fields in order.
    No row is inserted when `source` yields none. `on_conflict`: an ON CONFLICT clause, as is."""
    _, fields = _insert_plan(type(instance), connection.vendor)
    _, values = insert_statement(instance)
    source_sql, source_params = source
    quote = connection.ops.quote_name
    selected, params = [], []
    for field, value in zip(fields, values, strict=True):
        if field.attname in expressions:
            selected.append(expressions[field.attname])
        else:
            selected.append("%s")
            params.append(value)
    returned = [instance._meta.pk, *(f for f in fields if f.attname in expressions)]
    # As in _insert_plan, only the model's names and the caller's fixed SQL go into the text.
    sql = "INSERT INTO {} ({}) SELECT {} FROM {} {} RETURNING {}".format(  # noqa: S608
        quote(instance._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(selected),
        source_sql,
        on_conflict,
        ", ".join(quote(f.column) for f in returned),
    )
    return sql, [*params, *source_params]


def saved(instance: Model, pk) -> Model:
    """The instance as Model.save() leaves it once stored with primary key `pk`."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def insert(instance: Model) -> Model:
    """INSERT a new model instance and set its pk."""
    sql, values = insert_statement(instance)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return saved(instance, cursor.fetchone()[0])


def update_statement(model: type[Model], pk, **values) -> Statement:
    """UPDATE one row by primary key; auto_now fields not given are set to now."""
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
    return sql, [*(f.get_db_prep_save(values[f.name], connection) for f in fields), pk]


def update(model: type[Model], pk, **values) -> int:
    """Run update_statement(); returns the number of rows changed (0: the row is gone)."""
    sql, params = update_statement(model, pk, **values)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def one_query_allowed() -> bool:
    # PostgreSQL runs several statements sent as one simple query in one implicit transaction;
    # Django's psycopg cursors bind client-side (the default) and send exactly that.
    options = connection.settings_dict.get("OPTIONS", {})
    return connection.vendor == "postgresql" and options.get("server_side_binding") is not True


def in_one_round_trip(statements: list[Statement]):
    """Run the statements as one transaction (or inside the caller's); return the first row of
    the last one's result, or None when it has none.

    On PostgreSQL they travel as one query: one round trip instead of one per statement plus
    BEGIN and COMMIT. Elsewhere (SQLite) they run one after the other in an atomic block.
    """
    with connection.cursor() as cursor:
        if one_query_allowed():
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [param for _, params in statements for param in params],
            )
            while cursor.nextset():
                pass
            return cursor.fetchone() if cursor.description else None
        with transaction.atomic(savepoint=False):
            for sql, params in statements:
                cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None


def results_in_one_query(statements: list[Statement]) -> list[list[tuple] | None]:
    """PostgreSQL only (one_query_allowed()): run the statements as one query, one implicit
    transaction, and return every statement's rows (None for one that returns none)."""
    results = []
    with connection.cursor() as cursor:
        cursor.execute(
            "; ".join(sql for sql, _ in statements),
            [param for _, params in statements for param in params],
        )
        while True:
            results.append(cursor.fetchall() if cursor.description else None)
            if not cursor.nextset():
                return results
