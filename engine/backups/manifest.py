"""Backup manifests: what a backup holds, written last; a backup without one does not exist."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StoredFile:
    """One file of a backup: its name at the destination and digests before/after sealing."""

    name: str
    raw_size: int
    raw_sha256: str
    stored_size: int
    stored_sha256: str


@dataclass(frozen=True)
class Manifest:
    """Everything a restore, a drill, verify and retention need to know about one backup."""

    tier: str
    kind: str
    backup_id: str
    started_at: datetime
    finished_at: datetime
    codec: str
    encrypted_with: str | None
    files: list[StoredFile]
    backup_type: str = "full"  # full | incremental | dump | batch
    parent_id: str | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    server_version: str = ""
    tool_version: str = ""
    database: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    definition_hash: str = ""
    git_commit: str | None = None

    @property
    def raw_bytes(self) -> int:
        return sum(f.raw_size for f in self.files)

    @property
    def stored_bytes(self) -> int:
        return sum(f.stored_size for f in self.files)

    def file(self, name: str) -> StoredFile:
        for stored in self.files:
            if stored.name == name:
                return stored
        raise KeyError(name)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        data = json.loads(raw)
        if data.pop("format", None) != FORMAT:
            raise ValueError("unknown manifest format")
        data["files"] = [StoredFile(**f) for f in data["files"]]
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["finished_at"] = datetime.fromisoformat(data["finished_at"])
        return cls(**data)


def new_backup_id(now: datetime) -> str:
    """A sortable id from the start time in UTC, e.g. 20261125T043015.123Z."""
    moment = now.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
