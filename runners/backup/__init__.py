"""Backups: logical (pg_dump), physical (pg_basebackup), WAL archiving, the audit vault."""
