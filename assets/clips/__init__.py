"""clips: single-shot clips from one decode per video. `asset` is the Dagster asset, `rows` its row
builder.
"""
