"""Named targets of marketops.yaml (dev, prod, ...): which one is in force, and the settings
it makes, each value still at its own line of the file.

A target is a partial overlay of the top-level settings, deep-merged onto them: mappings merge
key by key, anything else (a scalar, a list, null) replaces what the file says.
"""

from __future__ import annotations

from typing import Any

from engine.definitions.yamlsource import Path_, SourceDoc
from engine.errors import UnknownTarget
from engine.validation.findings import Finding

TARGETS_KEY = "targets"
DEFAULT_KEY = "default_target"
# An overlay cannot hold these: a target chooses settings, not other targets.
_FILE_ONLY = (TARGETS_KEY, DEFAULT_KEY)


def merge(base: Any, overlay: Any) -> Any:
    """`overlay` deep-merged onto `base`: mappings key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return overlay


def declared(doc: SourceDoc | None) -> dict[str, dict[str, Any]]:
    """The targets the file declares that are mappings (others are model errors)."""
    data = doc.data if doc is not None and isinstance(doc.data, dict) else {}
    targets = data.get(TARGETS_KEY)
    if not isinstance(targets, dict):
        return {}
    return {str(name): overlay for name, overlay in targets.items()
            if isinstance(overlay, dict)}


def select(doc: SourceDoc | None, requested: str | None, how: str = "--target") -> str | None:
    """The target in force: `requested` (from --target or the environment, named by `how`),
    else the file's default_target, else None for the top-level settings alone.

    An unknown requested target is an UnknownTarget naming where targets are declared; an
    unknown default_target is left to `problems` (validate reports it at its line)."""
    names = declared(doc)
    data = doc.data if doc is not None and isinstance(doc.data, dict) else {}
    if requested is None:
        default = data.get(DEFAULT_KEY)
        return default if isinstance(default, str) and default in names else None
    written = data.get(TARGETS_KEY)
    if requested in names or (isinstance(written, dict) and requested in written):
        return requested  # declared, if perhaps not as a mapping: the model says so
    if doc is None:
        raise UnknownTarget(f"unknown target '{requested}' (from {how}): there is no "
                            "marketops.yaml to declare targets in")
    if not isinstance(doc.data, dict) or TARGETS_KEY not in doc.data:
        raise UnknownTarget(f"unknown target '{requested}' (from {how}): {doc.file} declares "
                            "no targets:; add one or drop the option")
    where = doc.loc((TARGETS_KEY,), key=True)
    known = ", ".join(sorted(names)) or "none"
    raise UnknownTarget(f"unknown target '{requested}' (from {how}): {where.file}:{where.line} "
                        f"declares targets: {known}")


def problems(doc: SourceDoc) -> list[Finding]:
    """What is wrong with the targets themselves (the model checks their shape)."""
    found: list[Finding] = []
    data = doc.data if isinstance(doc.data, dict) else {}
    names = declared(doc)
    default = data.get(DEFAULT_KEY)
    if isinstance(default, str) and isinstance(data.get(TARGETS_KEY, {}), dict) \
            and default not in names:
        known = ", ".join(sorted(names)) or "none are declared"
        found.append(Finding(doc.loc((DEFAULT_KEY,)), f"default_target: unknown target "
                             f"'{default}' (targets: {known})", "targets"))
    for name, overlay in names.items():
        for key in _FILE_ONLY:
            if key in overlay:
                found.append(Finding(doc.loc((TARGETS_KEY, name, key), key=True),
                                     f"targets.{name}: '{key}' belongs at the top of the "
                                     "file, not inside a target", "targets"))
    return found


def _has(data: Any, path: Path_) -> bool:
    for key in path:
        if isinstance(data, dict) and isinstance(key, str) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return False
    return True


def _paths(data: Any, path: Path_ = ()) -> list[Path_]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*path, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(_paths(value, (*path, index)))
    return found


def apply(doc: SourceDoc, name: str | None) -> SourceDoc:
    """The settings document with target `name` merged in (the file itself for None).

    Every value keeps its real position: an overlay's value is located at its own line under
    `targets:`, the rest where the top level has it."""
    if name is None:
        return doc
    overlay = {k: v for k, v in declared(doc).get(name, {}).items() if k not in _FILE_ONLY}
    merged = merge(doc.data, overlay)
    prefix: Path_ = (TARGETS_KEY, name)
    result = SourceDoc(doc.file, merged)
    for path in _paths(merged):
        from_overlay = bool(path) and _has(overlay, path)
        source = (*prefix, *path) if from_overlay else path
        if source in doc.marks:
            result.marks[path] = doc.marks[source]
        if source in doc.key_marks:
            result.key_marks[path] = doc.key_marks[source]
        if source in doc.block_scalars:
            result.block_scalars[path] = doc.block_scalars[source]
        if source in doc.flow_mappings:
            result.flow_mappings.add(path)
    return result
