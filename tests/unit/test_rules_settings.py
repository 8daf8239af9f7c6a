"""Settings rules and the secrets policy."""

from pathlib import Path

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
