"""Jobs a data team launches from the UI or the CLI."""

from dagster import AssetSelection, define_asset_job

from assets.partitions import SOURCE_PARTITIONS

materialize_source = define_asset_job(
    "materialize_source",
    selection=AssetSelection.groups("ingest"),
    partitions_def=SOURCE_PARTITIONS,
    description="Materialize one source partition through every tier, write-audit-publish "
                "on lakeFS at each tier.",
)
