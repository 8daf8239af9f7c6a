"""Malformed definitions never crash the loader or validation: they become located findings."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.definitions.yamlsource import parse_yaml
from engine.validation.validate import validate
from tests.helpers import BASE, write_project

FILES = sorted(BASE)
TEXTS = [BASE[f] for f in FILES]

yaml_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
    st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_reports(text: str) -> None:
    doc, findings = parse_yaml("f.yaml", text)
    assert doc is not None or findings
    for finding in findings:
        assert finding.location.file == "f.yaml" and finding.location.line >= 1


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(FILES) - 1), cut=st.floats(0, 1),
       junk=st.binary(max_size=40))
def test_truncated_or_corrupted_files_give_findings(tmp_path_factory: object, index: int,
                                                    cut: float, junk: bytes) -> None:
    root = Path(tmp_path_factory.mktemp("p"))  # type: ignore[attr-defined]
    write_project(root)
    text = TEXTS[index].encode()
    (root / FILES[index]).write_bytes(text[: int(len(text) * cut)] + junk)
    defs = validate(root)
    assert not [f for f in defs.findings if f.rule == "internal"]
    for finding in defs.findings:
        assert finding.location.line >= 1 and finding.message


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(FILES) - 1), value=yaml_like,
       key=st.sampled_from(["title", "cron", "tables", "recipients", "kind", "period",
                            "destinations", "columns", "sql", "retention", "rpo"]))
def test_wrong_shapes_give_findings(tmp_path_factory: object, index: int, value: object,
                                    key: str) -> None:
    import yaml

    root = Path(tmp_path_factory.mktemp("p"))  # type: ignore[attr-defined]
    write_project(root)
    data = yaml.safe_load(TEXTS[index])
    data[key] = value
    (root / FILES[index]).write_text(yaml.safe_dump(data), encoding="utf-8")
    defs = validate(root)
    assert not [f for f in defs.findings if f.rule == "internal"], defs.findings
