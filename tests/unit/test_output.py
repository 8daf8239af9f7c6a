"""Validation output: text grouped by file, JSON for tools, GitHub annotations."""

import json
from pathlib import Path

from engine.validation.output import render_github, render_json, render_text
from tests.helpers import REVENUE, check

REPORT = "definitions/reports/revenue.yaml"


def _broken(tmp_path: Path):  # type: ignore[no-untyped-def]
    return check(tmp_path, {REPORT: REVENUE.replace("owner:", "ownr:"),
                            "schema/x.yaml": "name: [\n"})


def test_text_groups_by_file_and_summarizes(tmp_path: Path) -> None:
    text = render_text(_broken(tmp_path))
    blocks = text.strip().split("\n\n")
    assert blocks[0].splitlines()[0].startswith(f"{REPORT}:")
    assert all(line.startswith(REPORT) for line in blocks[0].splitlines())
    assert blocks[1].startswith("schema/x.yaml:")
    assert blocks[-1].startswith("invalid: 2 errors, 0 warnings in 2 files")


def test_text_valid(tmp_path: Path) -> None:
    assert render_text(check(tmp_path)).startswith("valid: 1 schema (2 tables), 1 report, "
                                                   "1 backup tier")


def test_json(tmp_path: Path) -> None:
    document = json.loads(render_json(_broken(tmp_path)))
    assert document["valid"] is False and document["summary"]["errors"] == 2
    first = document["findings"][0]
    assert set(first) == {"file", "line", "col", "severity", "rule", "message"}


def test_github_annotations(tmp_path: Path) -> None:
    lines = render_github(_broken(tmp_path)).splitlines()
    assert lines[0].startswith(f"::error file={REPORT},line=")
    assert "title=marketops model::" in lines[0]
    assert len([x for x in lines if x.startswith("::error")]) == 2


def test_github_escapes(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: REVENUE.replace("timezone: Europe/Berlin",
                                                      "timezone: 'a,b:c%'")})
    [line] = [x for x in render_github(result).splitlines() if x.startswith("::error")]
    message = line.split("::", 2)[2]
    assert "a,b:c%25" in message
