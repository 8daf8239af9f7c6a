"""Run every rule over a definitions repository and collect all findings at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from engine.definitions.loader import (
    SETTINGS_FILE,
    load_project,
    settings_doc,
    target_settings,
)
from engine.definitions.project import Project
from engine.definitions.targets import declared
from engine.definitions.yamlsource import SourceDoc
from engine.masking import describe_error
from engine.validation.findings import Finding, Location, Severity
from engine.validation.rules import all_rules
from engine.validation.sqlmemo import SqlMemo


@dataclass
class ValidationResult:
    """The project as loaded and everything wrong with it, sorted by file and line."""

    project: Project
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def passed(self, *, strict: bool = False) -> bool:
        """Valid: no errors (and, with strict, no warnings)."""
        return not self.errors and not (strict and self.warnings)


def validate(root: Path, *, target: str | None = None, how: str = "--target",
             every_target: bool = False, debug: bool = False, memo: SqlMemo | None = None,
             prepare: Callable[[Project], object] | None = None) -> ValidationResult:
    """Load `root` with the settings of `target` (else the default one) and run every rule.
    With `every_target` the findings are those of the file's own settings plus, named after
    it, what each target adds. With a memo, SQL analysed before (same text, same catalog,
    same checker) is not analysed again; `prepare` gets the loaded project before the rules
    run (to fill the memo faster). Problems are findings, never exceptions."""
    project, loaded = load_project(root, target, how)
    project.sql_memo = memo
    if prepare is not None:
        prepare(project)
    checked = _run_rules(project, debug)
    findings = loaded + checked
    read: list[Finding] = []
    raw = settings_doc(root, read) if every_target else None
    if raw is not None and not read and declared(raw):
        own: list[Finding] = []
        target_settings(raw, project.target, own)
        shared = set(loaded) - set(own)  # the other files' findings, the same for any target
        per: dict[str | None, set[Finding]] = {project.target: set(own + checked)}
        for name in [None, *declared(raw)]:
            if name not in per:
                per[name] = _target_findings(project, raw, name, debug)
        reference = shared | per[None]
        findings = list(reference)
        for name, found in per.items():
            findings.extend(replace(f, message=f"target {name}: {f.message}")
                            for f in found - reference if name is not None)
    unique = sorted(set(findings), key=Finding.sort_key)
    return ValidationResult(project, unique)


def _target_findings(project: Project, raw: SourceDoc, name: str | None,
                     debug: bool) -> set[Finding]:
    """The findings the settings of target `name` make, the rules run over them."""
    found: list[Finding] = []
    settings, merged = target_settings(raw, name, found)
    if any(f.rule == "model" for f in found):  # rules over defaults would only be noise
        return set(found)
    other = project.with_settings(settings, merged, name)
    return set(found + _run_rules(other, debug))


def run_rules(project: Project, found: list[Finding], *, debug: bool = False) -> list[Finding]:
    """`found` (the loader's findings) and every rule's, unique, sorted by file and line."""
    return sorted(set(found + _run_rules(project, debug)), key=Finding.sort_key)


def _run_rules(project: Project, debug: bool) -> list[Finding]:
    findings: list[Finding] = []
    for check in all_rules():
        try:
            findings.extend(check.func(project))
        except Exception as exc:  # one broken rule must not hide every other finding
            if debug:
                raise
            findings.append(Finding(Location(SETTINGS_FILE), f"internal error in rule "
                                    f"{check.name}: {describe_error(exc)}; please report this "
                                    "bug", "internal"))
    return findings
