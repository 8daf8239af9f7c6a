"""Validation findings rendered as text for people, JSON for tools, annotations for GitHub."""

from __future__ import annotations

import json
from itertools import groupby

from engine.validation.findings import Finding
from engine.validation.validate import ValidationResult


def summary(defs: ValidationResult) -> dict[str, int]:
    """Counts of what was checked and found."""
    project = defs.project
    return {
        "schemas": len(project.schemas),
        "tables": sum(len(s.model.tables) for s in project.schemas.values()),
        "glossary_terms": len(project.terms),
        "reports": len(project.reports),
        "backup_tiers": len(project.backups),
        "errors": len(defs.errors),
        "warnings": len(defs.warnings),
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_text(defs: ValidationResult, *, strict: bool = False) -> str:
    """Findings grouped by file, one `file:line:col: severity: message [rule]` line each."""
    blocks = []
    for _, group in groupby(defs.findings, key=lambda f: f.location.file):
        blocks.append("\n".join(f"{f.location}: {f.severity.value}: {f.message} [{f.rule}]"
                                for f in group))
    counts = summary(defs)
    terms = (f"{_plural(counts['glossary_terms'], 'glossary term')}, "
             if counts["glossary_terms"] else "")
    checked = (f"{_plural(counts['schemas'], 'schema')} ({_plural(counts['tables'], 'table')}), "
               f"{terms}{_plural(counts['reports'], 'report')}, "
               f"{_plural(counts['backup_tiers'], 'backup tier')}")
    if defs.passed(strict=strict):
        tail = f"valid: {checked}"
        if defs.warnings:
            tail += f" ({_plural(len(defs.warnings), 'warning')})"
    else:
        files = len({f.location.file for f in defs.findings})
        tail = (f"invalid: {_plural(len(defs.errors), 'error')}, "
                f"{_plural(len(defs.warnings), 'warning')} in {_plural(files, 'file')} "
                f"(checked {checked})")
    return "\n\n".join([*blocks, tail]) + "\n"


def _as_dict(finding: Finding) -> dict[str, object]:
    return {"file": finding.location.file, "line": finding.location.line,
            "col": finding.location.col, "severity": finding.severity.value,
            "rule": finding.rule, "message": finding.message}


def render_json(defs: ValidationResult, *, strict: bool = False) -> str:
    """A JSON document: valid, summary counts and every finding."""
    return json.dumps({"valid": defs.passed(strict=strict), "summary": summary(defs),
                       "findings": [_as_dict(f) for f in defs.findings]}, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(defs: ValidationResult, *, strict: bool = False) -> str:
    """GitHub Actions workflow commands: one ::error/::warning annotation per finding."""
    lines = []
    for f in defs.findings:
        lines.append(f"::{f.severity.value} file={_escape_property(f.location.file)},"
                     f"line={f.location.line},col={f.location.col},"
                     f"title={_escape_property('marketops ' + f.rule)}::{_escape_data(f.message)}")
    lines.append(render_text(defs, strict=strict).rstrip("\n").split("\n")[-1])
    return "\n".join(lines) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "github": render_github}
