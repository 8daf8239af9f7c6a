"""YAML files read with the position of every key and value kept, so errors point at lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.findings import Finding, Location

Path_ = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Alias expansion ("billion laughs") and absurd files stop here instead of eating the machine.
_MAX_NODES = 500_000
_MAX_BYTES = 16 * 1024 * 1024


@dataclass
class SourceDoc:
    """One parsed YAML file: its data and where each value and key sits in the text."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    block_scalars: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    flow_mappings: set[Path_] = field(default_factory=set)

    def loc(self, path: Sequence[str | int] = (), *, key: bool = False) -> Location:
        """Location of the value (or its key) at `path`, or of the nearest enclosing value."""
        p = tuple(path)
        while True:
            if key and p in self.key_marks:
                line, col = self.key_marks[p]
                return Location(self.file, line, col)
            if p in self.marks:
                line, col = self.marks[p]
                return Location(self.file, line, col)
            if not p:
                return Location(self.file, 1, 1)
            p = p[:-1]

    def text_loc(self, path: Sequence[str | int], line: int, col: int) -> Location:
        """Location of (line, col) inside the string value at `path` (1-based, within the value)."""
        p = tuple(path)
        if p in self.block_scalars:
            first_line, indent = self.block_scalars[p]
            return Location(self.file, first_line + line - 1, indent + col)
        base = self.loc(p)
        if line == 1:
            return Location(self.file, base.line, base.col + col - 1)
        return Location(self.file, base.line + line - 1, col)


class _Problems(Exception):
    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(findings)
        self.findings = findings


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self, doc: SourceDoc, lines: list[str]) -> None:
        self.doc = doc
        self.lines = lines
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0
        self.stack: set[int] = set()
        self.findings: list[Finding] = []

    def _at(self, node: yaml.Node) -> Location:
        line, col = _mark(node)
        return Location(self.doc.file, line, col)

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _Problems([Finding(self._at(node), "file expands to too many values "
                                     "(alias expansion?); simplify it", "yaml-syntax")])
        self.doc.marks[path] = _mark(node)
        if id(node) in self.stack:
            raise _Problems([Finding(self._at(node), "recursive alias: a value contains itself",
                                     "yaml-syntax")])
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            self.stack.add(id(node))
            try:
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.stack.discard(id(node))
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        self.stack.add(id(node))
        if node.flow_style:
            self.doc.flow_mappings.add(path)
        try:
            self.constructor.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.findings.append(Finding(self._at(key_node),
                                                 "a key must be a plain name, not a list or map",
                                                 "yaml-syntax"))
                    continue
                # The key as written: `on:` stays "on", `1:` stays "1" (no YAML 1.1 surprises).
                key = str(key_node.value)
                if key in result:
                    first = self.doc.key_marks[(*path, key)]
                    self.findings.append(Finding(
                        self._at(key_node),
                        f"duplicate key '{key}' (first defined at line {first[0]}); "
                        "remove one of them", "yaml-duplicate-key"))
                    continue
                self.doc.key_marks[(*path, key)] = _mark(key_node)
                result[key] = self.convert(value_node, (*path, key))
            return result
        finally:
            self.stack.discard(id(node))

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            first_line = node.start_mark.line + 2
            self.doc.block_scalars[path] = (first_line, self._indent(first_line))
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.findings.append(Finding(self._at(node), f"cannot read this value: {problem}",
                                         "yaml-syntax"))
            return None

    def _indent(self, line_no: int) -> int:
        for text in self.lines[line_no - 1:]:
            if text.strip():
                return len(text) - len(text.lstrip(" "))
        return 0


def _syntax_finding(file: str, exc: yaml.YAMLError) -> Finding:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if "alias" in problem or "alias" in str(context):
        message += "; a value starting with '*' must be quoted, e.g. cron: \"*/5 * * * *\""
    elif "\\t" in problem or "tab" in problem:
        message += "; indent with spaces, YAML does not allow tabs"
    return Finding(Location(file, line, col), message, "yaml-syntax")


def _decode(file: str, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _Problems([Finding(Location(file, line, col),
                                 f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                                 "yaml-encoding")]) from exc
    return text.removeprefix("\ufeff")


def parse_yaml(file: str, text: str) -> tuple[SourceDoc | None, list[Finding]]:
    """Parse one YAML document from `text`; problems come back as findings, never raised."""
    doc = SourceDoc(file, None)
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        return None, [_syntax_finding(file, exc)]
    except RecursionError:
        return None, [Finding(Location(file), "invalid YAML: nested too deeply", "yaml-syntax")]
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None, [Finding(Location(file), "the file is empty; write the definition or "
                              "delete the file", "yaml-empty")]
    if len(nodes) > 1:
        return None, [Finding(Location(file, *_mark(nodes[1])),
                              "only one YAML document per file (remove the '---' separator)",
                              "yaml-syntax")]
    converter = _Converter(doc, text.splitlines())
    try:
        doc.data = converter.convert(nodes[0], ())
    except _Problems as problems:
        return None, problems.findings
    except RecursionError:
        return None, [Finding(Location(file), "invalid YAML: nested too deeply", "yaml-syntax")]
    return doc, converter.findings


def load_yaml(path: Path, display: str) -> tuple[SourceDoc | None, list[Finding]]:
    """Read and parse the YAML file at `path`, shown to users as `display`."""
    try:
        if path.is_dir():
            return None, [Finding(Location(display), "is a directory, expected a YAML file",
                                  "yaml-file")]
        if path.stat().st_size > _MAX_BYTES:
            return None, [Finding(Location(display), "file is larger than 16 MiB", "yaml-file")]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Finding(Location(display), f"cannot read: {exc.strerror}", "yaml-file")]
    try:
        text = _decode(display, raw)
    except _Problems as problems:
        return None, problems.findings
    return parse_yaml(display, text)
