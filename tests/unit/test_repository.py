"""The repository's own definitions and files: valid, documented, consistent."""

import re
from pathlib import Path

from engine.definitions.jsonschema import schema_documents
from engine.validation.validate import validate

ROOT = Path(__file__).resolve().parents[2]


def test_repository_definitions_are_valid() -> None:
    defs = validate(ROOT, debug=True)
    assert defs.findings == []


def test_committed_json_schemas_are_current() -> None:
    for name, text in schema_documents().items():
        assert (ROOT / "jsonschema" / name).read_text(encoding="utf-8") == text, (
            f"jsonschema/{name} is stale: run marketops jsonschema")


def test_definition_files_carry_the_editor_schema_header() -> None:
    kinds = {"schema": "schema", "definitions/reports": "report",
             "definitions/backups": "backup"}
    for folder, kind in kinds.items():
        for path in sorted((ROOT / folder).glob("*.yaml")):
            first = path.read_text(encoding="utf-8").splitlines()[0]
            match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
            assert match, f"{path} lacks the yaml-language-server header"
            target = (path.parent / match.group(1)).resolve()
            assert target == ROOT / "jsonschema" / f"{kind}.schema.json", path


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- test-command -->\s*```sh\n(.+?)\n```", readme, re.S)
    assert match, "README.md must show the test command after <!-- test-command -->"
    command = match.group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
