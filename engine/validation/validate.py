"""Run every rule over a definitions repository and collect all findings at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.definitions.loader import SETTINGS_FILE, load_project
from engine.definitions.project import Project
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


def validate(root: Path, *, debug: bool = False, memo: SqlMemo | None = None
             ) -> ValidationResult:
    """Load `root` and run every rule; problems are findings, never exceptions. With a memo,
    SQL analysed before (same text, same catalog, same checker) is not analysed again."""
    project, findings = load_project(root)
    project.sql_memo = memo
    return ValidationResult(project, run_rules(project, findings, debug=debug))


def run_rules(project: Project, found: list[Finding], *, debug: bool = False) -> list[Finding]:
    """`found` (the loader's findings) and every rule's, unique, sorted by file and line."""
    findings = list(found)
    for check in all_rules():
        try:
            findings.extend(check.func(project))
        except Exception as exc:  # one broken rule must not hide every other finding
            if debug:
                raise
            findings.append(Finding(Location(SETTINGS_FILE), f"internal error in rule "
                                    f"{check.name}: {describe_error(exc)}; please report this "
                                    "bug", "internal"))
    return sorted(set(findings), key=Finding.sort_key)
