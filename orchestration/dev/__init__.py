"""Development tooling: the local lakeFS server, its binary build, and garbage-collection rules."""
