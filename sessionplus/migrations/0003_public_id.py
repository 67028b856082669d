from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from sessionplus.identifiers import public_id

BATCH_SIZE = 1000


def fill_public_ids(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Give the rows written before this migration the public id the engines now write."""
    Session = apps.get_model("sessionplus", "Session")
    rows = Session.objects.using(schema_editor.connection.alias)
    missing = rows.filter(public_id=None).values_list("session_key", flat=True)
    # A batch at a time, each one a fresh query: no cursor stays open over updated rows.
    while keys := list(missing[:BATCH_SIZE]):
        rows.bulk_update(
            [Session(session_key=key, public_id=public_id(key)) for key in keys], ["public_id"]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("sessionplus", "0002_user_agent_db_default"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="public_id",
            field=models.CharField(
                blank=True, db_index=True, editable=False, max_length=32, null=True
            ),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop, elidable=True),
    ]
