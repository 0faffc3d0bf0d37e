"""scored: every signal per clip, dedup, concepts and governance routes. `asset` is the Dagster
asset, `rows` its row builder.
"""
