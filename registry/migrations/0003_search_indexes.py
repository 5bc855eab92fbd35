"""Search indexes that only PostgreSQL has: pg_trgm for name similarity and a
GIN index over each member's name sound keys. SQLite (the embedded demo)
searches the same columns without them."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS registry_member_name_keys_gin "
        "ON registry_member USING gin (string_to_array(btrim(name_keys), ' '))"
    )
    # Every pair of a member's name keys ("ml+mns" for Mary Mwansa), so a
    # two-word search reads one short posting list instead of intersecting two
    # long ones: 12.7 ms -> 1.1 ms at a million households (docs/benchmarks.md).
    # The "C" collation pins the order of a pair to the one Python sorts by.
    schema_editor.execute(
        "CREATE OR REPLACE FUNCTION registry_name_key_pairs(keys text) RETURNS text[] "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
        "SELECT coalesce(array_agg(a || '+' || b), '{}') "
        "FROM unnest(string_to_array(btrim(keys), ' ')) a, unnest(string_to_array(btrim(keys), ' ')) b "
        "WHERE a COLLATE \"C\" < b COLLATE \"C\" $$"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS registry_member_name_key_pairs_gin "
        "ON registry_member USING gin (registry_name_key_pairs(name_keys))"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS registry_member_search_name_trgm "
        "ON registry_member USING gin (search_name gin_trgm_ops)"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS registry_member_national_id_prefix "
        "ON registry_member (national_id varchar_pattern_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in (
        "registry_member_name_keys_gin",
        "registry_member_name_key_pairs_gin",
        "registry_member_search_name_trgm",
        "registry_member_national_id_prefix",
    ):
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    schema_editor.execute("DROP FUNCTION IF EXISTS registry_name_key_pairs(text)")


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
