"""raw_pool: one row per source video (probe, hash, prefilters, opt-outs). `asset` is the Dagster
asset, `rows` its pure row builder.
"""
