"""Shared fixtures (the real CLI, the Docker engine, the local registry, the dev
cluster, a conda channel) and the one hook that marks each test with the real parts it
needs (tests/helpers/parts.py) and skips it when one is missing."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import TEST_PREFIX, run_cli
from tests.helpers.parts import INTEGRATION, PARTS, REGISTRY_VARIABLE, parts_needed, required


@pytest.hookimpl(tryfirst=True)  # before -m selects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the parts it needs: those of the fixtures it uses, directly
    or through other fixtures (`docker_engine`, `local_registry`, `registry_commands`,
    `dev_cluster`), or of
    a marker of its own; and with `integration` when it needs any."""
    for item in items:
        needed = parts_needed(item.fixturenames, (m.name for m in item.iter_markers()))
        for part in needed:
            item.add_marker(part.name)
        if needed:
            item.add_marker(INTEGRATION)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose part is missing, before any of its fixtures is made, with the
    reason of the first part missing (one reason, from this one place, per part: the
    summary shows each once, with its count); fail it under the test command."""
    for part in PARTS:
        if item.get_closest_marker(part.name) and (reason := part.missing()):
            if required():
                pytest.fail(f"{reason} (the test command requires it)", pytrace=False)
            pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["PANGEO_BINDER_IMAGE_PREFIX"] = TEST_PREFIX
    os.environ.setdefault("PANGEO_BINDER_CACHE_DIR",
                          str(tmp_path_factory.mktemp("pangeo-binder-cache")))
    yield


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture(scope="session")
def docker_engine():
    """The real Docker engine (the `docker` part: checked before the test starts); the
    images the session built are removed at its end."""
    from pangeo_binder.engine import Engine
    from pangeo_binder.settings import Settings

    engine = Engine(Settings.from_env().docker_cli)
    engine.check()
    yield engine
    import docker.errors

    for image in engine.client.images.list():
        for tag in image.tags:
            if TEST_PREFIX in tag:  # also under a registry: localhost:5000/<prefix>
                # Untag even where a stopped pod container still refers to the image.
                with contextlib.suppress(docker.errors.APIError):
                    engine.client.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def local_registry() -> str:
    """The local registry's address (the `registry` part: scripts/setup-registry)."""
    return os.environ[REGISTRY_VARIABLE]


@pytest.fixture(scope="session")
def registry_commands() -> None:
    """docker-registry and htpasswd, which tests/helpers/registries.py's registries
    behind auth run (the `registry` part: scripts/setup-registry installs them)."""


@pytest.fixture(scope="module")
def dev_cluster() -> None:
    """The dev cluster (the `kubernetes` part: KUBECONFIG names it), with the Dask
    operator running."""
    from tests.helpers.k8s import kubectl

    assert "Running" in kubectl("-n", "dask-operator", "get", "pods")


@pytest.fixture(scope="module")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local conda channel of small real packages (tests/helpers/conda_channel.py)."""
    from tests.helpers.conda_channel import make_test_channel

    return make_test_channel(tmp_path_factory.mktemp("channel"))


@pytest.fixture
def conda_env(conda_channel: Path, tmp_path: Path) -> dict[str, str]:
    """Settings for a conda build against `conda_channel`: its channel as conda-forge, the
    test base, a fresh cache, and a TMPDIR a test can check is left empty."""
    from tests.helpers.conda_channel import conda_settings

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    return {**conda_settings(conda_channel, tmp_path / "base.yml"), "TMPDIR": str(scratch),
            "PANGEO_BINDER_CACHE_DIR": str(tmp_path / "cache")}
