"""Validation rules: small named functions from a Project to findings, run all together."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.definitions.project import Project
from engine.validation.findings import Finding

RuleFunc = Callable[[Project], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A named check over the whole project."""

    name: str
    func: RuleFunc
    doc: str


RULES: list[Rule] = []


def rule(name: str) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule under `name` (its findings carry that name unless they set their own)."""

    def register(func: RuleFunc) -> RuleFunc:
        RULES.append(Rule(name, func, (func.__doc__ or "").strip()))
        return func

    return register


def all_rules() -> list[Rule]:
    """Every registered rule, importing the modules that define them."""
    from engine.validation.rules import (
        backup_rules,
        glossary_rules,
        report_rules,
        schema_rules,
        settings_rules,
    )

    del backup_rules, glossary_rules, report_rules, schema_rules, settings_rules
    return list(RULES)
