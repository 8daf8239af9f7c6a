"""YAML files read with the position of every key and value kept, so errors point at lines."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.definitions.journal import note_file
from engine.validation.findings import Finding, Location

Path_ = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Alias expansion ("billion laughs") and absurd files stop here instead of eating the machine.
_MAX_NODES = 500_000
MAX_YAML_BYTES = 1024 * 1024
# What YAML 1.1 calls printable; anything else is a control character PyYAML refuses.
_UNPRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd"
                          "\U00010000-\U0010ffff]")


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


def _syntax_finding(file: str, exc: yaml.YAMLError, text: str) -> Finding:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    at = text[mark.index] if mark is not None and 0 <= mark.index < len(text) else ""
    if "alias" in problem or "alias" in str(context):
        message += "; a value starting with '*' must be quoted, e.g. cron: \"*/5 * * * *\""
    elif at == "\t":
        message += "; indent with spaces, YAML does not allow tabs"
    return Finding(Location(file, line, col), message, "yaml-syntax")


def position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, col) of the character at `index` in `text`."""
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def _control_character(file: str, text: str) -> Finding | None:
    found = _UNPRINTABLE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    name = " (NUL)" if code == 0 else ""
    return Finding(Location(file, *position(text, found.start())),
                   f"control character U+{code:04X}{name} is not allowed in YAML; remove it",
                   "yaml-encoding")


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
    control = _control_character(file, text)
    if control is not None:
        return None, [control]
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        return None, [_syntax_finding(file, exc, text)]
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


class FileProblem(Exception):
    """A file that cannot be read as definitions; the message says what it is instead."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them.

    FIFOs, devices and sockets are refused before opening (reading them could block for good
    or never end); a symlink loop is named as one. Raises FileProblem."""
    note_file(path)
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileProblem("is a symlink loop (a link that leads back to itself); point it "
                              "at a real file") from None
        if exc.errno == errno.ENOENT and path.is_symlink():
            raise FileProblem(f"is a symlink to a missing file ({os.readlink(path)})") from None
        raise FileProblem(f"cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise FileProblem("is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise FileProblem("is not a regular file (a FIFO, device or socket); definitions are "
                          "read from plain files only")
    too_big = FileProblem(f"is larger than {limit // 1024 // 1024} MiB; split it up")
    if info.st_size > limit:
        raise too_big
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO since the stat, opening cannot hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise FileProblem("is not a regular file (a FIFO, device or socket); "
                                  "definitions are read from plain files only")
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise FileProblem(f"cannot be read: {exc.strerror}") from None
    if len(raw) > limit:
        raise too_big
    return raw


def load_yaml(path: Path, display: str) -> tuple[SourceDoc | None, list[Finding]]:
    """Read and parse the YAML file at `path`, shown to users as `display`."""
    try:
        raw = read_bounded(path, MAX_YAML_BYTES)
    except FileProblem as problem:
        return None, [Finding(Location(display), str(problem), "yaml-file")]
    try:
        text = _decode(display, raw)
    except _Problems as problems:
        return None, problems.findings
    return parse_yaml(display, text)
