"""Captioner backends behind one interface (`base`): signals, transformers VLM, OpenAI-compatible
HTTP.
"""
