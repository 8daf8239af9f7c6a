"""Load a definitions repository into a Project, collecting every problem with its position."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from engine.dbschema.pgnames import check_name
from engine.definitions.glossary import TermCycle, TermSource, closure, expand
from engine.definitions.journal import note_dir, note_file
from engine.definitions.models.backup import BackupTier
from engine.definitions.models.base import Identifier
from engine.definitions.models.glossary import Term
from engine.definitions.models.report import Report
from engine.definitions.models.schema import SchemaFile
from engine.definitions.models.settings import Settings, SettingsFile
from engine.definitions.project import Loaded, Project, ReportSql
from engine.definitions.targets import apply, problems, select
from engine.definitions.yamlsource import FileProblem, SourceDoc, load_yaml, read_bounded
from engine.validation.findings import Finding, Location

SETTINGS_FILE = "marketops.yaml"
SCHEMA_DIR = "schema"
REPORTS_DIR = "definitions/reports"
BACKUPS_DIR = "definitions/backups"
GLOSSARY_DIR = "definitions/glossary"
MAX_SQL_BYTES = 1024 * 1024

M = TypeVar("M")

_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def _unwrap(kind: Any) -> list[Any]:
    """The concrete types behind Annotated, Optional and unions."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(kind)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(kind) for t in _unwrap(arg)]
    return [kind]


def _step(kind: Any, key: str | int) -> list[Any]:
    found: list[Any] = []
    for concrete in _unwrap(kind):
        origin = typing.get_origin(concrete)
        if isinstance(concrete, type) and issubclass(concrete, BaseModel):
            field = concrete.model_fields.get(str(key))
            if field is not None:
                found.append(field.annotation)
        elif origin is dict:
            found.append(typing.get_args(concrete)[1])
        elif origin is list and isinstance(key, int):
            found.append(typing.get_args(concrete)[0])
    return found


def allowed_keys(kind: Any, loc: Sequence[str | int]) -> list[str]:
    """The keys a mapping at `loc` may hold, walking the model's annotations."""
    current = [kind]
    for key in loc:
        stepped = [t for k in current for t in _step(k, key)]
        if stepped:  # otherwise `key` was a union tag pydantic put in the loc
            current = stepped
    keys: list[str] = []
    for kind_ in current:
        for concrete in _unwrap(kind_):
            if isinstance(concrete, type) and issubclass(concrete, BaseModel):
                keys.extend(k for k in concrete.model_fields if k not in keys)
    return keys


def _data_path(data: Any, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """The part of pydantic's loc that exists in the data (union tags dropped)."""
    path: list[str | int] = []
    current = data
    for key in loc:
        if isinstance(current, dict) and isinstance(key, str) and key in current:
            current = current[key]
            path.append(key)
        elif isinstance(current, list) and isinstance(key, int) and 0 <= key < len(current):
            current = current[key]
            path.append(key)
    return tuple(path)


def _value_at(data: Any, path: Sequence[str | int]) -> Any:
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _error_finding(doc: SourceDoc, kind: Any, error: ErrorDetails) -> Finding:
    loc = error["loc"]
    path = _data_path(doc.data, loc)
    if error["type"] == "extra_forbidden":
        key = str(path[-1]) if path else str(loc[-1])
        allowed = allowed_keys(kind, loc[:-1])
        close = get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else (
            f" (allowed: {', '.join(allowed)})" if allowed else "")
        where = _dotted(path[:-1])
        if path[:-1] in doc.flow_mappings and _value_at(doc.data, path) is None:
            hint = ("; in a {flow: mapping} a comma ends the value before it: quote text "
                    "that contains commas")
        return Finding(doc.loc(path, key=True),
                       f"{where + ': ' if where else ''}unknown key '{key}'{hint}", "model")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx") or {}
        key = str(ctx.get("discriminator", "")).strip("'\"")
        node = doc.data
        for part in path:
            node = node[part]
        if isinstance(node, dict) and key in node:
            tags = [t.strip(" '\"") for t in str(ctx.get("expected_tags", "")).split(",")]
            close = get_close_matches(str(node[key]), tags, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return Finding(doc.loc((*path, key)), f"{_dotted((*path, key))}: '{node[key]}' is "
                           f"not one of {', '.join(tags)}{hint}", "model")
        return Finding(doc.loc(path), f"{_dotted(path) + ': ' if path else ''}missing required "
                       f"key '{key}'", "model")
    if error["type"] == "missing":
        where = _dotted(path)
        return Finding(doc.loc(path), f"{where + ': ' if where else ''}missing required key "
                       f"'{loc[-1]}'", "model")
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error["type"] in ("model_type", "dict_type") and not isinstance(error.get("input"), dict):
        message = f"expected a mapping (key: value), got {_describe(error.get('input'))}"
    where = _dotted(path)
    return Finding(doc.loc(path), f"{where + ': ' if where else ''}{message}", "model")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"[:80]


def build_model(doc: SourceDoc, kind: Any) -> tuple[Any | None, list[Finding]]:
    """Validate a parsed document against `kind`; every error located in the YAML."""
    if not isinstance(doc.data, dict):
        return None, [Finding(doc.loc(), f"expected a mapping of keys at the top, got "
                              f"{_describe(doc.data)}", "model")]
    try:
        return _adapter(kind).validate_python(doc.data), []
    except ValidationError as exc:
        findings = [_error_finding(doc, kind, e) for e in exc.errors(include_url=False)]
        return None, sorted(set(_one_per_misspelt_key(findings)), key=Finding.sort_key)


def _one_per_misspelt_key(findings: list[Finding]) -> list[Finding]:
    """'unknown key opp; did you mean op?' says it all: drop the 'missing required key op'
    that the same misspelling causes."""
    meant = {f.message.rsplit("did you mean '", 1)[1].rstrip("'?")
             for f in findings if "unknown key '" in f.message and "did you mean '" in f.message}
    return [f for f in findings if not (
        "missing required key '" in f.message
        and f.message.rsplit("missing required key '", 1)[1].rstrip("'") in meant)]


def _yaml_files(root: Path, folder: str, findings: list[Finding]) -> Iterator[Path]:
    directory = root / folder
    note_dir(directory)
    if not directory.is_dir():
        parts = Path(folder).parts
        for depth in range(1, len(parts) + 1):  # `definitions` itself may be the file
            where = "/".join(parts[:depth])
            note_file(root / where)
            if os.path.lexists(root / where) and not (root / where).is_dir():
                # a file, a FIFO, a dangling link or a symlink loop: never "0 reports, valid"
                what = ("a symlink loop or a broken link" if (root / where).is_symlink()
                        else "a file")
                findings.append(Finding(Location(where), f"{where} is {what}, expected a "
                                        "folder", "yaml-file"))
                break
        return
    for path in sorted(directory.iterdir()):
        if path.suffix in (".yaml", ".yml") and not path.name.startswith("."):
            outside = _outside(root, path)
            if outside is not None:
                findings.append(Finding(Location(f"{folder}/{path.name}"), f"is a link to "
                                        f"{outside}, outside the project; definitions are "
                                        "read from inside the project only", "yaml-file"))
                continue
            yield path


def _outside(root: Path, path: Path) -> str | None:
    """Where `path` really leads when that is a regular file outside the project, else None:
    a definition (or a link committed as one) must not make validate read, and quote, any
    file on the host (~/.pgpass, /etc/shadow). Other kinds are refused when read."""
    note_file(path)
    note_file(root)
    try:
        if not path.is_file():
            return None
        real = path.resolve()
    except (OSError, RuntimeError):  # a loop: reported as one when it is read
        return None
    try:
        real.relative_to(root.resolve())
    except ValueError:
        return str(real)
    return None


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _check_id(display: str, stem: str) -> Finding | None:
    try:
        _adapter(Identifier).validate_python(stem)
    except ValidationError:
        return Finding(Location(display), f"file name '{stem}' is not a valid id: use "
                       "lowercase letters, digits and underscores", "file-name")
    return None


def _check_schema_stem(display: str, stem: str) -> Finding | None:
    try:
        check_name(stem)
    except ValueError as exc:
        return Finding(Location(display), f"file name '{stem}': {exc}", "file-name")
    return None


def _load_kind(root: Path, folder: str, kind: Any, findings: list[Finding],
               failed: list[tuple[str, SourceDoc, Path]] | None = None
               ) -> Iterator[tuple[str, Any, SourceDoc, Path]]:
    seen: dict[str, str] = {}
    for path in _yaml_files(root, folder, findings):
        display = _display(root, path)
        # A schema file is named after its schema, whose name may be mixed-case (Shop).
        problem = _check_id(display, path.stem) if kind is not SchemaFile else \
            _check_schema_stem(display, path.stem)
        if problem:
            findings.append(problem)
            continue
        if path.stem in seen:
            findings.append(Finding(Location(display), f"id '{path.stem}' is also defined by "
                                    f"{seen[path.stem]}; rename one", "duplicate-id"))
            continue
        seen[path.stem] = display
        doc, problems = load_yaml(path, display)
        findings.extend(problems)
        if doc is None or problems:
            continue
        model, problems = build_model(doc, kind)
        findings.extend(problems)
        if model is not None:
            yield path.stem, model, doc, path
        elif failed is not None:
            failed.append((path.stem, doc, path))


def settings_doc(root: Path, findings: list[Finding]) -> SourceDoc | None:
    """marketops.yaml as parsed, None when absent; problems go to findings."""
    path = root / SETTINGS_FILE
    note_file(path)
    if not os.path.lexists(path):  # a broken link or a loop is reported, not taken as absent
        return None
    doc, problems_ = load_yaml(path, SETTINGS_FILE)
    findings.extend(problems_)
    return doc


def target_settings(doc: SourceDoc, target: str | None,
                    findings: list[Finding]) -> tuple[Settings, SourceDoc]:
    """The settings `target` makes (the file's own for None), each error at its line."""
    merged = apply(doc, target)
    model, found = build_model(merged, SettingsFile)
    findings.extend(found)
    if isinstance(merged.data, dict):
        findings.extend(problems(merged))
    return (model if model is not None else Settings()), merged


def _load_settings(root: Path, target: str | None, how: str, findings: list[Finding]
                   ) -> tuple[Settings, SourceDoc | None, str | None]:
    parsed: list[Finding] = []
    doc = settings_doc(root, parsed)
    findings.extend(parsed)
    if parsed:  # the targets cannot be read from a broken file: the findings say why
        return Settings(), doc, None
    name = select(doc, target, how)
    if doc is None:
        return Settings(), None, None
    settings, merged = target_settings(doc, name, findings)
    return settings, merged, name


def _load_sql(root: Path, model: Report | Term | _SqlSource, doc: SourceDoc,
              yaml_path: Path, findings: list[Finding]) -> ReportSql | None:
    if model.sql is not None:
        return ReportSql(model.sql)
    assert model.sql_file is not None
    joined = yaml_path.parent / model.sql_file
    outside = _outside(root, joined)
    if outside is not None:
        findings.append(Finding(doc.loc(("sql_file",)), f"sql_file '{model.sql_file}' leads "
                                f"to {outside}, outside the project; keep SQL files inside "
                                "the project", "sql-file"))
        return None
    try:
        sql_path = joined.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, on Python < 3.13
        sql_path = joined.absolute()
    display = _display(root.resolve(), sql_path)
    try:
        raw = read_bounded(joined, MAX_SQL_BYTES)
    except FileProblem as problem:
        message = str(problem)
        if message.startswith("is larger"):
            findings.append(Finding(Location(display), f"the SQL file {message}", "sql-file"))
        else:
            findings.append(Finding(doc.loc(("sql_file",)), f"sql_file '{model.sql_file}' "
                                    f"{message}", "sql-file"))
        return None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        findings.append(Finding(Location(display, *_byte_position(raw, exc.start)),
                                f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the SQL file "
                                "as UTF-8", "sql-file"))
        return None
    return ReportSql(text, display)


@dataclass(frozen=True)
class _SqlSource:
    sql: str | None
    sql_file: str | None


def _unbuilt_sql(root: Path, doc: SourceDoc, path: Path,
                 findings: list[Finding]) -> ReportSql | None:
    """The SQL of a report whose YAML has other problems, so that its SQL is checked in the
    same run; not when it uses glossary terms (they cannot be inlined without the model)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    sql, sql_file = data.get("sql"), data.get("sql_file")
    if sql is None and sql_file is None:
        # A misspelt key (sql_flie) still says where the SQL is.
        close = get_close_matches("sql_file", [str(k) for k in data], n=1, cutoff=0.75)
        sql_file = data.get(close[0]) if close else None
    if data.get("uses") or (sql is None) == (sql_file is None):
        return None
    if not isinstance(sql, str | None) or not isinstance(sql_file, str | None):
        return None
    return _load_sql(root, _SqlSource(sql, sql_file), doc, path, findings)


def _byte_position(raw: bytes, index: int) -> tuple[int, int]:
    before = raw[:index]
    return before.count(b"\n") + 1, index - (before.rfind(b"\n") + 1) + 1


def _terms(loaded: Loaded[Report] | Loaded[Term], depends: dict[str, list[str]],
           sources: dict[str, TermSource], findings: list[Finding],
           own: str | None = None) -> list[tuple[str, TermSource]]:
    """The glossary terms `loaded` uses, with what they use, in the order they must appear;
    an unknown or circular term is a finding at its `uses` entry."""
    for index, name in enumerate(loaded.model.uses):
        if name not in depends:
            close = get_close_matches(name, list(depends), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else (
                f" (defined: {', '.join(sorted(depends))})" if depends else
                f"; define it in {GLOSSARY_DIR}/{name}.yaml")
            findings.append(Finding(loaded.loc(("uses", index)), f"uses: unknown glossary "
                                    f"term '{name}'{hint}", "glossary"))
    try:
        names = closure(loaded.model.uses, depends)
    except TermCycle as exc:
        if own is not None:
            findings.append(Finding(loaded.loc(("uses",)), f"glossary terms use each other in "
                                    f"a circle: {exc}", "glossary"))
        return []
    return [(name, sources[name]) for name in names if name in sources and name != own]


def load_project(root: Path, target: str | None = None, how: str = "--target"
                 ) -> tuple[Project, list[Finding]]:
    """Read every definition under `root`, with the settings of `target` (asked for by
    `how`), else of the file's default_target. Problems are returned, never raised; only an
    unknown target asked for is an UnknownTarget."""
    findings: list[Finding] = []
    settings, doc, name = _load_settings(root, target, how, findings)
    project = Project(root=root, settings=settings, settings_doc=doc, target=name)
    for stem, model, doc, _ in _load_kind(root, SCHEMA_DIR, SchemaFile, findings):
        if model.name != stem:
            findings.append(Finding(doc.loc(("name",)), f"schema name '{model.name}' differs "
                                    f"from its file name '{stem}'; make them the same",
                                    "schema-name"))
        project.schemas[model.name] = Loaded(model.name, model, doc)
    terms: dict[str, TermSource] = {}
    for stem, term, doc, path in _load_kind(root, GLOSSARY_DIR, Term, findings):
        project.terms[stem] = Loaded(stem, term, doc)
        sql = _load_sql(root, term, doc, path, findings)
        if sql is not None:
            terms[stem] = TermSource(sql, doc)
    depends = {name: list(loaded.model.uses) for name, loaded in project.terms.items()}
    for name, source in terms.items():
        inlined = _terms(project.terms[name], depends, terms, findings, own=name)
        project.term_sql[name] = expand(source.sql, inlined)
    failed: list[tuple[str, SourceDoc, Path]] = []
    for stem, model, doc, path in _load_kind(root, REPORTS_DIR, Report, findings, failed):
        sql = _load_sql(root, model, doc, path, findings)
        loaded_report = Loaded(stem, model, doc)
        project.reports[stem] = loaded_report
        if sql is not None:
            project.report_sql[stem] = expand(
                sql, _terms(loaded_report, depends, terms, findings))
    for stem, doc, path in failed:
        sql = _unbuilt_sql(root, doc, path, findings)
        if sql is not None:
            project.unbuilt_sql[stem] = (sql, doc)
    for stem, model, doc, _ in _load_kind(root, BACKUPS_DIR, BackupTier, findings):
        project.backups[stem] = Loaded(stem, model, doc)
    return project, findings
