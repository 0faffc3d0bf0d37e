"""What every tier's asset shares: partitions, the lakeFS layout, write-audit-publish, progress,
outages, metadata and charts.
"""
