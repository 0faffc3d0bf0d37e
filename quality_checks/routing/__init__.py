"""Routing decisions (not checks): scored governance labels and routes, stage routing, and the
policy preview.
"""
