"""stage_256p / stage_480p / stage_720p / sft: training samples per stage. `asset` holds the four
assets, `rows` their row builder.
"""
