"""The definitions one CLI job needs, checked with validate's cache."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.definitions.scope import validate_job
from engine.errors import DefinitionError
from engine.masking import mask
from engine.validation.validate import ValidationResult
from runners.cache.analyses import open_memo, save_memo


def job_definitions(root: Path, job_id: str, *, target: str | None = None,
                    how: str = "--target", debug: bool = False) -> ValidationResult:
    """What `job_id` reads with the settings of `target` (asked for by `how`), validated;
    DefinitionError naming the first of its own problems. A problem only elsewhere is one
    warning line on stderr, and the job goes on."""
    memo = open_memo(root)
    checked = validate_job(root, job_id, target=target, how=how, memo=memo, debug=debug)
    save_memo(root, memo, prune=False)  # the other reports' entries stay for validate
    defs = checked.defs
    if not defs.passed():
        first = defs.errors[0]
        raise DefinitionError(f"{len(defs.errors)} definition error(s) {job_id} depends on, "
                              f"first: {first.location}: {first.message}; run marketops "
                              "validate")
    if checked.elsewhere:
        first = checked.elsewhere[0]
        print(mask(f"warning: {len(checked.elsewhere)} definition error(s) in what {job_id} "
                   f"does not read, first: {first.location}: {first.message}; run marketops "
                   "validate"), file=sys.stderr)
    return defs
