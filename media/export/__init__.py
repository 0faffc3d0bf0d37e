"""Training-sample output: resolution/aspect/frame buckets, transcodes, release exports, the loader."""
