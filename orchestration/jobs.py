"""Jobs a data team launches from the UI or the CLI."""

from dagster import AssetSelection, define_asset_job

materialize_source = define_asset_job(
    "materialize_source",
    # every group partitioned by `source`
    selection=AssetSelection.groups("ingest", "curate", "caption"),
    description="Materialize one source partition through every tier, write-audit-publish "
                "on lakeFS at each tier.",
)
