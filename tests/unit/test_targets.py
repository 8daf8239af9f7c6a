"""Named targets of marketops.yaml: the merge, the choice of target, and where findings point."""

import json
from pathlib import Path

import pytest

from engine.definitions.jsonschema import schema_documents
from engine.definitions.loader import load_project
from engine.definitions.scope import validate_job
from engine.definitions.targets import apply, merge, select
from engine.definitions.yamlsource import parse_yaml
from engine.errors import UnknownTarget
from engine.validation.validate import validate
from runners.cache.analyses import open_memo, save_memo
from tests.helpers import REVENUE, SETTINGS, line_of, where, write_project

TARGETS = SETTINGS + """\
databases:
  primary: {dsn: embedded}
default_target: dev
targets:
  dev:
    embedded: {database: shop_dev}
  prod:
    databases:
      primary: {dsn: "${PROD_DSN}"}
    destinations:
      backups: {url: "s3://prod-backups/shop", region: eu-central-1}
    reports:
      pii_allowed_domains: [prod.example]
"""


def test_merge_is_deep_for_mappings() -> None:
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": 1}
    assert merge(base, {"a": {"y": {"q": 3}, "z": 4}}) == {
        "a": {"x": 1, "y": {"p": 1, "q": 3}, "z": 4}, "b": 1}
    assert base == {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": 1}  # not changed in place


def test_merge_replaces_scalars_lists_and_with_null() -> None:
    base = {"s": "old", "l": [1, 2, 3], "m": {"k": 1}}
    assert merge(base, {"s": "new", "l": [9], "m": None}) == {"s": "new", "l": [9], "m": None}
    assert merge({"m": [1]}, {"m": {"k": 1}}) == {"m": {"k": 1}}  # a mapping replaces a list


def test_selection_order_and_unknown_target() -> None:
    doc, _ = parse_yaml("marketops.yaml", TARGETS)
    assert select(doc, "prod") == "prod"
    assert select(doc, None) == "dev"  # default_target
    plain, _ = parse_yaml("marketops.yaml", SETTINGS)
    assert select(plain, None) is None
    with pytest.raises(UnknownTarget) as caught:
        select(doc, "prd", "MARKETOPS_TARGET")
    assert str(caught.value) == (
        f"unknown target 'prd' (from MARKETOPS_TARGET): marketops.yaml:"
        f"{line_of(TARGETS, 'targets:')} declares targets: dev, prod")
    assert caught.value.exit_code == 2
    with pytest.raises(UnknownTarget, match="declares no targets"):
        select(plain, "prod")


def test_merged_values_keep_their_own_lines() -> None:
    doc, _ = parse_yaml("marketops.yaml", TARGETS)
    assert doc is not None
    merged = apply(doc, "prod")
    assert merged.data["destinations"]["backups"] == {"url": "s3://prod-backups/shop",
                                                      "region": "eu-central-1"}
    assert merged.data["destinations"]["vault"] == {"url": "file://./var/vault"}
    assert merged.data["reports"] == {"destination": "archive",
                                      "pii_allowed_domains": ["prod.example"]}
    assert merged.loc(("destinations", "backups", "url")).line == line_of(TARGETS, "s3://")
    assert merged.loc(("destinations", "vault", "url")).line == line_of(TARGETS, "vault:")
    assert merged.loc(("reports", "pii_allowed_domains", 0)).line == line_of(
        TARGETS, "[prod.example]")
    assert merged.loc(("reports", "destination")).line == line_of(TARGETS, "destination:")
    assert apply(doc, None) is doc


def test_load_project_takes_the_target_in_force(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"marketops.yaml": TARGETS})
    project, findings = load_project(root)
    assert findings == [] and project.target == "dev"
    assert project.settings.embedded.database == "shop_dev"
    project, _ = load_project(root, "prod")
    assert project.target == "prod"
    assert project.settings.databases.primary.dsn == "${PROD_DSN}"  # a reference, unread
    assert project.settings.destinations["backups"].url == "s3://prod-backups/shop"
    assert project.settings.embedded.database == "marketplace"


def test_no_targets_is_the_file_alone(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    project, findings = load_project(root)
    assert findings == [] and project.target is None
    with pytest.raises(UnknownTarget):
        load_project(root, "prod")


def test_validate_reports_a_mistake_of_one_target_at_its_line(tmp_path: Path) -> None:
    settings = TARGETS + "  staging:\n    smtp: {host: mail, port: 99999, sender: a@b.example}\n" \
        "    reports: {destination: archiv}\n"
    root = write_project(tmp_path, {"marketops.yaml": settings})
    defs = validate(root, every_target=True, debug=True)
    found = {(where(f), f.message) for f in defs.findings}
    assert found == {
        (f"marketops.yaml:{line_of(settings, 'port: 99999')}",
         "target staging: smtp.port: Input should be less than or equal to 65535"),
    }
    # with the model error fixed, the rules run over the target's settings
    settings = settings.replace("port: 99999", "port: 25")
    root = write_project(tmp_path, {"marketops.yaml": settings})
    [finding] = validate(root, every_target=True, debug=True).findings
    assert where(finding) == f"marketops.yaml:{line_of(settings, 'destination: archiv}')}"
    assert finding.message.startswith("target staging: ")
    # the target in force alone is checked when running
    assert validate(root, target="prod", debug=True).findings == []


def test_a_mistake_of_the_file_itself_is_not_pinned_on_a_target(tmp_path: Path) -> None:
    settings = TARGETS.replace("destination: archive", "destination: archiv")
    root = write_project(tmp_path, {"marketops.yaml": settings})
    defs = validate(root, every_target=True, debug=True)
    [finding] = defs.findings
    assert not finding.message.startswith("target ")
    assert where(finding) == f"marketops.yaml:{line_of(settings, 'destination: archiv')}"


def test_a_target_that_is_not_a_mapping_is_a_finding_not_unknown(tmp_path: Path) -> None:
    settings = TARGETS + "  qa: [a, b]\n"
    root = write_project(tmp_path, {"marketops.yaml": settings})
    project, findings = load_project(root, "qa")
    assert project.target == "qa"
    assert [(where(f), f.message) for f in findings] == [
        (f"marketops.yaml:{line_of(settings, 'qa: [a, b]')}",
         "targets.qa: expected a mapping (key: value), got a list")]


def test_target_problems_are_findings(tmp_path: Path) -> None:
    settings = TARGETS.replace("default_target: dev", "default_target: dve") + \
        "  qa:\n    default_target: prod\n"
    root = write_project(tmp_path, {"marketops.yaml": settings})
    found = {(where(f), f.message) for f in validate(root, every_target=True).findings}
    assert found == {
        (f"marketops.yaml:{line_of(settings, 'default_target: dve')}",
         "default_target: unknown target 'dve' (targets: dev, prod, qa)"),
        (f"marketops.yaml:{line_of(settings, 'default_target: prod')}",
         "targets.qa: 'default_target' belongs at the top of the file, not inside a target"),
    }


def test_json_schema_describes_targets_as_partial_settings() -> None:
    schema = json.loads(schema_documents()["settings.schema.json"])
    [overlay] = schema["properties"]["targets"]["patternProperties"].values()
    assert overlay == {"$ref": "#/$defs/PartialSettings"}
    partial = schema["$defs"]["PartialSettings"]
    assert "targets" not in partial["properties"] and "smtp" in partial["properties"]
    assert "required" not in schema["$defs"]["PartialSmtp"]
    assert "required" in schema["$defs"]["Smtp"]
    assert schema["properties"]["default_target"]


def test_a_target_with_another_search_path_has_its_sql_checked_again(tmp_path: Path) -> None:
    settings = TARGETS.replace("  pii_allowed_domains: [corp.example]\n",
                               "  pii_allowed_domains: [corp.example]\n  search_path: [shop]\n")
    settings += "  qa:\n    reports: {search_path: [public]}\n"
    report = REVENUE.replace("from shop.orders o", "from orders o")
    root = write_project(tmp_path, {"marketops.yaml": settings,
                                    "definitions/reports/revenue.yaml": report})
    findings = validate(root, every_target=True, debug=True).findings
    assert findings and all(f.message.startswith("target qa: ") for f in findings)
    assert {f.location.file for f in findings} == {"definitions/reports/revenue.yaml"}


def test_an_unknown_default_target_does_not_stop_the_targets_checks(tmp_path: Path) -> None:
    settings = TARGETS.replace("default_target: dev", "default_target: dve") + \
        "  qa:\n    reports: {destination: archiv}\n"
    root = write_project(tmp_path, {"marketops.yaml": settings})
    defs = validate(root, every_target=True)
    found = {(where(f), f.message.split(";")[0]) for f in defs.findings}
    assert found == {
        (f"marketops.yaml:{line_of(settings, 'default_target: dve')}",
         "default_target: unknown target 'dve' (targets: dev, prod, qa)"),
        (f"marketops.yaml:{line_of(settings, 'destination: archiv}')}",
         "target qa: unknown destination 'archiv'"),
    }


def _search_path_targets(tmp_path: Path) -> Path:
    """The file's own settings resolve `orders` through search_path [shop]; target qa's
    [public] does not."""
    settings = TARGETS.replace("  pii_allowed_domains: [corp.example]\n",
                               "  pii_allowed_domains: [corp.example]\n  search_path: [shop]\n")
    settings = settings.replace("default_target: dev\n", "")
    settings += "  qa:\n    reports: {search_path: [public]}\n"
    report = REVENUE.replace("from shop.orders o", "from orders o")
    return write_project(tmp_path, {"marketops.yaml": settings,
                                    "definitions/reports/revenue.yaml": report})


@pytest.mark.parametrize("first", [None, "qa"])
def test_the_sql_cache_never_answers_for_another_targets_search_path(
        tmp_path: Path, first: str | None) -> None:
    root = _search_path_targets(tmp_path)
    expected = {name: validate(root, target=name).passed() for name in (None, "qa")}
    assert expected == {None: True, "qa": False}
    # One cache shared by both, warmed by one target, then read by the other (and again).
    for name in (first, "qa" if first is None else None, first):
        memo = open_memo(root)
        assert validate(root, target=name, memo=memo).passed() is expected[name]
        save_memo(root, memo)


def test_a_jobs_check_is_of_the_target_in_force(tmp_path: Path) -> None:
    root = _search_path_targets(tmp_path)
    memo = open_memo(root)
    assert validate_job(root, "report/revenue", memo=memo).passed()
    save_memo(root, memo, prune=False)
    checked = validate_job(root, "report/revenue", target="qa", memo=open_memo(root))
    assert not checked.passed()
    assert checked.defs.project.target == "qa"
    assert {f.location.file for f in checked.defs.errors} == \
        {"definitions/reports/revenue.yaml"}
    with pytest.raises(UnknownTarget, match="from MARKETOPS_TARGET"):
        validate_job(root, "report/revenue", target="nope", how="MARKETOPS_TARGET")
