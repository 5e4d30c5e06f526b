"""The real parts a test may need, each with the fixtures that stand for it, how to
tell whether this machine has it, and how to get it. tests/conftest.py marks each test
with the parts its fixtures need (and `integration` when it needs any) and skips it,
with one reason per missing part, when one is missing; under the test command
(scripts/test, which sets every part up) a missing part fails the test instead."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Set by scripts/test: what a test needs must be there.
REQUIRED = "PANGEO_BINDER_REQUIRE_DOCKER"
REGISTRY_VARIABLE = "PANGEO_BINDER_TEST_REGISTRY"


@dataclass(frozen=True)
class Part:
    name: str  # its marker (registered in pyproject.toml)
    fixtures: frozenset[str]  # a test that uses one of these needs the part
    missing: Callable[[], str | None]  # why it is not here, or None


@functools.cache
def docker_missing() -> str | None:
    from pangeo_binder.engine import Engine
    from pangeo_binder.errors import DockerError
    from pangeo_binder.settings import Settings

    try:
        Engine(Settings.from_env().docker_cli).check()
    except DockerError as exc:
        return f"no Docker engine: {exc}"  # which says how to start one
    return None


def registry_missing() -> str | None:
    absent = [] if os.environ.get(REGISTRY_VARIABLE) else [f"{REGISTRY_VARIABLE} is not set"]
    absent += [f"no {command} command" for command in ("docker-registry", "htpasswd")
               if shutil.which(command) is None]
    if absent:
        return (f"no local registry ({', '.join(absent)}): scripts/test sets one up "
                "(scripts/setup-registry prints the variable)")
    return None


def kubernetes_missing() -> str | None:
    if not os.environ.get("KUBECONFIG"):
        return ("no dev Kubernetes cluster (KUBECONFIG is not set): scripts/test sets one "
                "up (deploy/dev-cluster/cluster up prints the variable)")
    return None


# The most particular part first: a test that needs several is skipped for the first
# one missing, so each missing part is one line of pytest's summary.
PARTS = (
    Part("kubernetes", frozenset({"dev_cluster"}), kubernetes_missing),
    Part("registry", frozenset({"local_registry", "registry_commands"}), registry_missing),
    Part("docker", frozenset({"docker_engine"}), docker_missing),
)
# The marker of every test that needs any of them.
INTEGRATION = "integration"


def parts_needed(fixtures: Iterable[str], markers: Iterable[str] = ()) -> list[Part]:
    """The parts a test needs: those of the fixtures it uses (directly or through other
    fixtures), and those it is marked with by hand."""
    fixtures, markers = set(fixtures), set(markers)
    return [part for part in PARTS if part.fixtures & fixtures or part.name in markers]


def required() -> bool:
    return bool(os.environ.get(REQUIRED))
