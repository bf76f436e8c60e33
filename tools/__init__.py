"""Maintainer-only tooling: publishing full runs into the repository, replication runs.

Not part of the tutorial's library."""
