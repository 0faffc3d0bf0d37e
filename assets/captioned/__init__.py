"""captioned: structured captions with QC. `asset` is the Dagster asset, `rows` its row builder."""
