from pathlib import Path

from tests.helpers import check


def test_the_base_test_project_is_valid(tmp_path: Path) -> None:
    result = check(tmp_path)
    assert result.findings == []
    assert result.passed(strict=True)
