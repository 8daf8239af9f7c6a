"""Settings rules and the secrets policy."""

from pathlib import Path

import pytest

from tests.helpers import SETTINGS, by_rule, check, line_of, where


def test_reports_destination_must_exist(tmp_path: Path) -> None:
    settings = SETTINGS.replace("destination: archive", "destination: archiv")
    result = check(tmp_path, {"marketops.yaml": settings})
    [finding] = by_rule(result, "settings")
    assert where(finding) == f"marketops.yaml:{line_of(settings, 'destination: archiv')}"


def test_secret_literal_is_refused(tmp_path: Path) -> None:
    settings = SETTINGS.replace("${BACKUP_KEY}", "hunter2-plaintext")
    result = check(tmp_path, {"marketops.yaml": settings})
    [finding] = by_rule(result, "model")
    assert where(finding) == f"marketops.yaml:{line_of(settings, 'hunter2')}"
    assert "hunter2" not in finding.message  # a secret never appears in output


def test_dsn_with_password_is_refused(tmp_path: Path) -> None:
    settings = SETTINGS + "databases:\n  primary: {dsn: 'postgresql://app:s3cret@db/shop'}\n"
    result = check(tmp_path, {"marketops.yaml": settings})
    [finding] = by_rule(result, "model")
    assert "holds a password" in finding.message
    assert "s3cret" not in finding.message


@pytest.mark.parametrize(("dsn", "form"), [
    ("postgresql://app@db/shop?password=QpTail-7", "a password= query parameter"),
    ("postgresql://app@db/shop?sslmode=require&sslpassword=QpTail-7",
     "a password= query parameter"),
    ("host=db user=app password=QpTail-7", "a password= setting"),
    ("host=db user=app password = 'a b QpTail-7'", "a password= setting"),
    ("password=QpTail-7 host=db", "a password= setting"),
])
def test_a_literal_password_in_any_dsn_form_is_refused(tmp_path: Path, dsn: str,
                                                       form: str) -> None:
    settings = SETTINGS + f'databases:\n  primary: {{dsn: "{dsn}"}}\n'
    result = check(tmp_path, {"marketops.yaml": settings})
    [finding] = by_rule(result, "model")
    assert where(finding) == f"marketops.yaml:{line_of(settings, 'primary:')}"
    assert form in finding.message and "QpTail" not in finding.message


def test_dsn_without_password_and_env_dsn_pass(tmp_path: Path) -> None:
    settings = SETTINGS + ("databases:\n  primary: {dsn: 'postgresql://app@db/shop'}\n"
                           "  reports: {dsn: '${REPLICA_DSN}'}\n")
    assert check(tmp_path, {"marketops.yaml": settings}).findings == []


def test_bad_domain(tmp_path: Path) -> None:
    settings = SETTINGS.replace("[corp.example]", "[corp.example, '@corp']")
    result = check(tmp_path, {"marketops.yaml": settings})
    [finding] = by_rule(result, "settings")
    assert "'@corp'" in finding.message


def test_missing_settings_file_means_defaults(tmp_path: Path) -> None:
    result = check(tmp_path, {"marketops.yaml": None})
    # Without settings, the destinations named by the definitions do not exist.
    assert by_rule(result, "backup-references")


def test_reports_without_a_role_are_warned(tmp_path: Path) -> None:
    settings = SETTINGS.replace("roles: {reports: marketops_reports}\n", "")
    found = by_rule(check(tmp_path, {"marketops.yaml": settings}), "roles")
    assert [(f.severity.value, f.message.split(",")[0]) for f in found] == [
        ("warning", "reports would connect as the embedded server's superuser")]
    assert by_rule(check(tmp_path), "roles") == []
