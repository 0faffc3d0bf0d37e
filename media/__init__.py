"""Pure media functions: no Dagster, no lakeFS. Anything here that decodes video says so."""
