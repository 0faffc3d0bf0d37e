"""Jobs a data team launches from the UI or the CLI."""

from dagster import AssetSelection, define_asset_job

materialize_source = define_asset_job(
    "materialize_source",
    # every group partitioned by `source`
    selection=AssetSelection.groups("ingest", "curate", "caption", "stages")
    - AssetSelection.assets("release"),
    description="Materialize one source partition through every tier, write-audit-publish "
                "on lakeFS at each tier.",
    tags={"vcurate/lakefs-writer": "tiers"},
)

publish_release = define_asset_job(
    "publish_release",
    selection=AssetSelection.assets("release"),
    description="Union every stage manifest on main into a release manifest and tag the commit "
                "(release-<date>-<n>).",
    tags={"vcurate/lakefs-writer": "release"},
)
