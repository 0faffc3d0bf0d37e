"""Training-sample output: resolution/aspect/frame buckets, transcodes, shards."""
