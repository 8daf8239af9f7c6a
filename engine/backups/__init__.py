"""Backups: manifests, retention, WAL names, the audit chain, freshness, recovery targets."""
