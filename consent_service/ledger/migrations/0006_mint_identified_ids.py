"""Users' subjects from before identified ids were minted get one, as their next write
or login would give them: so the config and the server-side helpers have it at once.

The prefix and length are copied, not imported: a migration must not change with the code.
"""

from __future__ import annotations

import secrets

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

PREFIX = "cs_"
RANDOM_BYTES = 24
DISTINCT_ID = "distinct_id"


def mint(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Subject = apps.get_model("ledger", "Subject")
    Identifier = apps.get_model("ledger", "SubjectIdentifier")
    has_one = Identifier.objects.filter(
        kind=DISTINCT_ID, refused_at__isnull=True, value__startswith=PREFIX
    ).values("subject_id")
    without = Subject.objects.filter(user__isnull=False).exclude(pk__in=has_one)
    Identifier.objects.bulk_create(
        [
            Identifier(
                subject_id=pk, kind=DISTINCT_ID, value=PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
            )
            for pk in without.values_list("pk", flat=True).iterator()
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_subject_erased_at")]
    operations = [migrations.RunPython(mint, migrations.RunPython.noop)]
