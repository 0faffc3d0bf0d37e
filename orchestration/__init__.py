"""Wiring only: Definitions, jobs, sensors and the CLI. Nothing imports this package."""
