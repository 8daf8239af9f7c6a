"""JSON Schema of each definition kind, for editors (yaml-language-server) and other tools."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from engine.definitions.models.backup import BackupTier
from engine.definitions.models.glossary import Term
from engine.definitions.models.report import Report
from engine.definitions.models.schema import SchemaFile
from engine.definitions.models.settings import SettingsFile
from engine.definitions.targets import DEFAULT_KEY, TARGETS_KEY

KINDS: dict[str, tuple[Any, str]] = {
    "schema": (SchemaFile, "A marketops schema file (schema/<name>.yaml)"),
    "report": (Report, "A marketops report (definitions/reports/<id>.yaml)"),
    "term": (Term, "A marketops glossary term (definitions/glossary/<term>.yaml)"),
    "backup": (BackupTier, "A marketops backup tier (definitions/backups/<id>.yaml)"),
    "settings": (SettingsFile, "marketops.yaml: engine settings"),
}


def schema_documents() -> dict[str, str]:
    """File name -> JSON text for every definition kind."""
    documents = {}
    for name, (kind, title) in KINDS.items():
        schema = TypeAdapter(kind).json_schema()
        if kind is SettingsFile:
            schema = _with_partial_targets(schema)
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "title": title, **{k: v for k, v in schema.items() if k != "title"}}
        documents[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents


def _partial(node: Any) -> Any:
    """`node` with nothing required and no defaults, its $defs references to the partial
    copies: what a target's overlay may hold."""
    if isinstance(node, list):
        return [_partial(item) for item in node]
    if not isinstance(node, dict):
        return node
    partial = {k: _partial(v) for k, v in node.items() if k not in ("required", "default")}
    if isinstance(partial.get("$ref"), str):
        partial["$ref"] = partial["$ref"].replace("#/$defs/", "#/$defs/Partial")
    return partial


def _with_partial_targets(schema: dict[str, Any]) -> dict[str, Any]:
    """Each target described as the settings without anything required (pydantic only sees
    a mapping: the overlay is checked once merged)."""
    definitions = schema.get("$defs", {})
    overlay = {k: v for k, v in schema.items() if k not in ("$defs", "title")}
    overlay["properties"] = {k: v for k, v in schema["properties"].items()
                             if k not in (TARGETS_KEY, DEFAULT_KEY)}
    overlay["description"] = "A target: any of the settings, merged onto the file's own."
    partials = {f"Partial{name}": _partial(d) for name, d in definitions.items()}
    partials["PartialSettings"] = _partial(overlay)
    targets = dict(schema["properties"][TARGETS_KEY])
    targets["patternProperties"] = {pattern: {"$ref": "#/$defs/PartialSettings"}
                                    for pattern in targets["patternProperties"]}
    return {**schema, "$defs": {**definitions, **partials},
            "properties": {**schema["properties"], TARGETS_KEY: targets}}
