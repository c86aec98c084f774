"""The database itself refuses UPDATE and DELETE on consent records.

SQLite drops a table's triggers when Django rebuilds it for an ALTER, so a later
migration that alters ledger_consentrecord must recreate them (a test checks).
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES_CREATE = """
CREATE OR REPLACE FUNCTION ledger_refuse_record_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger_consentrecord is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_consentrecord_append_only
    BEFORE UPDATE OR DELETE ON ledger_consentrecord
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_record_change();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS ledger_consentrecord_append_only ON ledger_consentrecord;
DROP FUNCTION IF EXISTS ledger_refuse_record_change();
"""
SQLITE_CREATE = [
    """CREATE TRIGGER ledger_consentrecord_no_update BEFORE UPDATE ON ledger_consentrecord
    BEGIN SELECT RAISE(ABORT, 'ledger_consentrecord is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER ledger_consentrecord_no_delete BEFORE DELETE ON ledger_consentrecord
    BEGIN SELECT RAISE(ABORT, 'ledger_consentrecord is append-only: DELETE refused'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_consentrecord_no_update",
    "DROP TRIGGER IF EXISTS ledger_consentrecord_no_delete",
]


def create_triggers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, POSTGRES_CREATE, SQLITE_CREATE)


def drop_triggers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, POSTGRES_DROP, SQLITE_DROP)


def _run(schema_editor: BaseDatabaseSchemaEditor, postgres: str, sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres, params=None)  # the SQL holds a literal %
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"No append-only trigger for database vendor {vendor!r}")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
