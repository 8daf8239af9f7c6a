"""The Dockerfile against what uses it: the Kubernetes example and the repository. Building
the image needs a docker daemon (none on the development machines); these read the files."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _container() -> dict[str, Any]:
    manifest = yaml.safe_load((ROOT / "docs" / "deploy" / "kubernetes.yaml").read_text())
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_kubernetes_example_runs_what_the_image_holds() -> None:
    steps = _instructions()
    container = _container()
    workdirs = [arg for op, arg in steps if op == "WORKDIR"]
    assert workdirs[-1] == container["workingDir"] == "/definitions"
    assert json.loads(dict(steps)["CMD"]) == container["args"]
    ports = [int(arg) for op, arg in steps if op == "EXPOSE"]
    assert ports == [p["containerPort"] for p in container["ports"]]
    [entry] = json.loads(dict(steps)["ENTRYPOINT"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry in scripts
    assert dict(steps)["USER"] != "root"


def test_every_file_the_image_copies_exists_and_is_not_ignored() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    copies = [shlex.split(arg) for op, arg in _instructions() if op == "COPY"]
    sources = [s for args in copies for s in args[:-1] if not s.startswith("--")]
    assert {"pyproject.toml", "engine", "runners", "marketops.yaml", "definitions"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch(source, pattern) for pattern in ignored), source


def test_the_image_s_project_takes_its_primary_from_the_secret() -> None:
    # The RUN's sed, applied here to the repository's marketops.yaml as the build applies it.
    [run] = [arg for op, arg in _instructions() if op == "RUN" and "sed -i" in arg]
    pattern, replacement = re.search(r"sed -i 's\|(.+?)\|(.+?)\|' marketops\.yaml", run).groups()
    before = (ROOT / "marketops.yaml").read_text(encoding="utf-8")
    after = re.sub(pattern, replacement, before, flags=re.M)
    assert yaml.safe_load(before)["databases"]["primary"]["dsn"] == "embedded"
    assert yaml.safe_load(after)["databases"]["primary"]["dsn"] == "${PRIMARY_DSN}"
    assert after.count("\n") == before.count("\n")  # one line changed, nothing else
