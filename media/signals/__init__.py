"""Per-clip signals from keyframes and frame statistics: text, borders, watermark, quality,
aesthetics, NSFW, embeddings, dedup, concepts.
"""
