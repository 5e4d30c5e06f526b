"""The real parts a test may need (tests/helpers/parts.py): what marks a test with them,
and the reasons a plain `pytest` gives for the tests it skips."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from tests.helpers import parts
from tests.helpers.cli import REPO_ROOT


def test_every_marker_is_registered_with_its_meaning():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    markers = dict(line.split(": ", 1)
                   for line in config["tool"]["pytest"]["ini_options"]["markers"])
    assert set(markers) == {parts.INTEGRATION, *(part.name for part in parts.PARTS)}
    assert all(markers.values())


@pytest.mark.parametrize(("fixtures", "markers", "needed"), [
    (["tmp_path"], [], []),
    (["tmp_path", "docker_engine"], [], ["docker"]),
    (["docker_engine", "local_registry"], [], ["registry", "docker"]),
    (["registry_commands"], [], ["registry"]),
    (["docker_engine", "dev_cluster"], [], ["kubernetes", "docker"]),
    (["tmp_path"], ["docker", "parametrize"], ["docker"]),
])
def test_the_parts_a_test_needs_are_those_of_its_fixtures_or_its_markers(fixtures, markers,
                                                                         needed):
    assert [p.name for p in parts.parts_needed(fixtures, markers)] == needed


def test_this_test_needs_no_part(request):
    assert request.node.get_closest_marker(parts.INTEGRATION) is None
    assert not any(request.node.get_closest_marker(p.name) for p in parts.PARTS)


def test_a_missing_part_names_itself_and_how_to_get_it(monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv(parts.REGISTRY_VARIABLE, raising=False)
    assert "KUBECONFIG is not set" in parts.kubernetes_missing()
    assert "deploy/dev-cluster/cluster up" in parts.kubernetes_missing()
    assert f"{parts.REGISTRY_VARIABLE} is not set" in parts.registry_missing()
    assert "scripts/setup-registry" in parts.registry_missing()
    monkeypatch.setenv("KUBECONFIG", "/somewhere/kubeconfig")
    assert parts.kubernetes_missing() is None


def test_the_lanes_select_by_the_markers_the_hook_sets():
    """scripts/test's lanes are `-m kubernetes` and `-m "not kubernetes"`, and `--quick`
    is `-m "not integration"`: a hook that marked nothing would leave the cluster's lane
    empty (pytest's "no test selected", which scripts/test accepts) and run every
    cluster test in the other lane."""
    def collected(marker: str, path: str) -> int:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             "-m", marker, path], capture_output=True, text=True, cwd=REPO_ROOT, check=False)
        # "5 tests collected", "46/1181 tests collected" or "no tests collected"
        last = result.stdout.strip().splitlines()[-1]
        assert "collected" in last, result.stdout[-2000:] + result.stderr[-2000:]
        count = last.split("/")[0].split()[0]
        return 0 if count == "no" else int(count)

    prewarm = "tests/integration/test_prewarm.py"
    assert collected("kubernetes", prewarm) == collected("integration", prewarm) > 0
    assert collected("not kubernetes", prewarm) == 0
    build = "tests/integration/test_build.py"
    assert collected("docker", build) > 0
    assert collected("not integration", build) == 0
