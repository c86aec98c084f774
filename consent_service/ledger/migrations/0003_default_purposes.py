from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

GENESIS_HASH = "0" * 64
PURPOSES = [
    ("analytics", "Product analytics", "Page views and product events, sent to PostHog."),
    ("session_replay", "Session replay", "Recordings of your visit, with inputs masked."),
]


def load(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Purpose = apps.get_model("ledger", "Purpose")
    for position, (key, name, description) in enumerate(PURPOSES):
        Purpose.objects.get_or_create(
            key=key, defaults={"name": name, "description": description, "position": position}
        )
    LedgerHead = apps.get_model("ledger", "LedgerHead")
    LedgerHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_append_only_triggers")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
