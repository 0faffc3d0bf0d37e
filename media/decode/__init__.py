"""Opening and decoding a video: probing, content hashes, the one decoded frame stream."""
