"""JSON Schema of each definition kind, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from engine.definitions.models.backup import BackupTier
from engine.definitions.models.glossary import Term
from engine.definitions.models.report import Report
from engine.definitions.models.schema import SchemaFile
from engine.definitions.models.settings import Settings

KINDS: dict[str, tuple[Any, str]] = {
    "schema": (SchemaFile, "A marketops schema file (schema/<name>.yaml)"),
    "report": (Report, "A marketops report (definitions/reports/<id>.yaml)"),
    "term": (Term, "A marketops glossary term (definitions/glossary/<term>.yaml)"),
    "backup": (BackupTier, "A marketops backup tier (definitions/backups/<id>.yaml)"),
    "settings": (Settings, "marketops.yaml: engine settings"),
}


def schema_documents() -> dict[str, str]:
    """File name -> JSON text for every definition kind."""
    documents = {}
    for name, (kind, title) in KINDS.items():
        schema = TypeAdapter(kind).json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "title": title, **{k: v for k, v in schema.items() if k != "title"}}
        documents[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents
