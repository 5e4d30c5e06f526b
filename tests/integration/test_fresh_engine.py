"""Base images shared through the registry, and builds on an engine named by DOCKER_HOST.

A fresh build node (a BinderHub build pod on a new node, or its dind builder) has an
empty engine. Here that is a second, real dockerd (scripts/second-engine) with its own
data root and socket, reached only through DOCKER_HOST, as BinderHub's dind builder is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from pangeo_binder.builder.bases import CONTENT_LABEL, SharedBases, shared_name
from pangeo_binder.builder.pipeline import base_image_plans, ensure_base
from pangeo_binder.builder.plan import ImagePlan, content_hash
from pangeo_binder.events import Event, ignore
from pangeo_binder.settings import Settings
from tests.helpers.cli import REPO_ROOT, TEST_PREFIX, run_cli
from tests.helpers.repos import git_repo, write_tree

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def tags_in_registry(registry: str, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list") as answer:
            return json.load(answer)["tags"] or []
    except urllib.error.HTTPError:
        return []


@pytest.fixture(scope="module")
def second_engine(docker_engine) -> Iterator[docker.DockerClient]:
    """A second dockerd with its own data root, socket and bridge (with NAT, as a node's
    engine has), holding only the OS image (saved from the first engine and loaded, as a
    node pulls it); stopped and removed afterwards."""
    script = REPO_ROOT / "scripts" / "second-engine"
    root = tempfile.mkdtemp(prefix="pb-engine-", dir="/tmp")  # short: socket paths
    try:
        up = subprocess.run([script, "up", root, "--network"], capture_output=True,
                            text=True, check=False)
        assert up.returncode == 0, up.stderr
        docker_host = up.stdout.strip().removeprefix("export DOCKER_HOST=")
        client = docker.DockerClient(base_url=docker_host, timeout=600)
        os_image = Settings.from_env().os_image
        client.images.load(docker_engine.client.images.get(os_image).save(named=os_image))
        client.docker_host = docker_host  # type: ignore[attr-defined]
        yield client
        client.close()
    finally:
        subprocess.run([script, "down", root], check=False)


def on(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_a_fresh_engine_named_by_docker_host_pulls_the_base_and_builds_there(
        docker_engine, second_engine, tmp_path, local_registry):
    registry = local_registry
    prefix = f"{registry}/{TEST_PREFIX}"
    # A build node that may push leaves the bases of what it built in the registry.
    first = write_tree(tmp_path / "first", {"a.ipynb": NOTEBOOK, "id": uuid.uuid4().hex})
    result = run_cli("build", str(first), "--push", "--image-prefix", prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    bases = base_image_plans(docker_engine, Settings.from_env(), ignore)
    for base in bases:
        repository = shared_name(base, TEST_PREFIX).rpartition(":")[0]
        assert base.tag in tags_in_registry(registry, repository)

    # A fresh node: BinderHub's build pod command, the engine only through DOCKER_HOST.
    # The repository adds a package, so its requirements are resolved in a sandbox
    # container and installed by BuildKit, both on that engine.
    remote = git_repo(tmp_path / "second", {"binder/requirements.txt": "properscoring\n",
                                            "b.ipynb": NOTEBOOK, "id": uuid.uuid4().hex})
    image = f"{prefix}fresh-{uuid.uuid4().hex[:8]}:v1"
    env = {**os.environ, "DOCKER_HOST": second_engine.docker_host,
           "PANGEO_BINDER_CACHE_DIR": str(tmp_path / "cache")}  # nothing resolved yet
    build = subprocess.run(
        [sys.executable, "-m", "pangeo_binder.builder.repo2docker", "--ref=main",
         f"--image={image}",
         "--no-clean", "--no-run", "--json-logs", "--user-name=jovyan", "--user-id=1000",
         "--push", remote.as_uri()],
        capture_output=True, text=True, env=env, check=False, timeout=1800)
    events = [json.loads(line) for line in build.stdout.splitlines()]
    assert build.returncode == 0 and events[-1]["phase"] == "built", build.stdout[-3000:]
    messages = [e["message"] for e in events]
    # The OS + Python base for the sandbox, then the Pangeo environment: pulled, not built.
    assert [m for m in messages if m.startswith("Pulling the base image")] == [
        f"Pulling the base image {shared_name(base, prefix)}\n" for base in bases]
    assert not [m for m in messages if m.startswith("Building pangeo-binder/")], messages
    assert not [m for m in messages if "building it here" in m], messages

    # It is all on the second engine: the bases under their local names, the sandbox
    # gone, the image built there (and pushed), and nothing of it on the first engine.
    assert all(on(second_engine, base.image) for base in bases)
    assert on(second_engine, image)
    assert not on(docker_engine.client, image)
    assert second_engine.containers.list(all=True) == []
    repository, _, tag = image.partition("/")[2].rpartition(":")
    assert tag in tags_in_registry(registry, repository)
    out = second_engine.containers.run(image, ["python", "-c", "import properscoring; "
                                               "import xarray; print('ok')"],
                                       remove=True, network_disabled=True)
    assert out.strip() == b"ok"


def tiny_base(os_image: str) -> ImagePlan:
    """A real base image of a few bytes with a content tag of its own."""
    marker = uuid.uuid4().hex
    dockerfile = f"FROM {os_image}\nRUN echo {marker} > /marker\n"
    digest = content_hash([dockerfile])
    return ImagePlan(image=f"{TEST_PREFIX}tiny-base:{digest[:16]}", content_hash=digest,
                     dockerfile="Dockerfile", smoke_test=f"grep -q {marker} /marker",
                     files={"Dockerfile": dockerfile})


def test_a_base_is_pulled_when_in_the_registry_and_built_when_not(docker_engine,
                                                                  local_registry):
    registry = local_registry
    settings = Settings.from_env()
    plan = tiny_base(settings.os_image)
    lines: list[str] = []

    def emit(event: Event) -> None:
        if not event.detail:
            lines.append(event.message)

    shared = SharedBases(docker_engine, f"{registry}/{TEST_PREFIX}", emit)
    remote = shared_name(plan, f"{registry}/{TEST_PREFIX}")
    assert remote == f"{registry}/{TEST_PREFIX}pangeo-binder-base-tiny-base:{plan.tag}"

    # Not in the registry: one line says so, then it is built here.
    ensure_base(docker_engine, plan, settings, emit, shared)
    refused = [line for line in lines if "not pulled" in line]
    assert len(refused) == 1 and refused[0].startswith(f"Base image {remote} not pulled (")
    assert refused[0].endswith("); building it here") and "not found" in refused[0]
    assert f"Building {plan.image}" in lines
    assert docker_engine.client.images.get(plan.image).labels[CONTENT_LABEL] == \
        plan.content_hash

    shared.publish(plan)
    assert plan.tag in tags_in_registry(registry, remote.partition("/")[2].rpartition(":")[0])
    lines.clear()
    shared.publish(plan)  # already there: nothing is pushed again
    assert lines == []

    # Gone from this engine: the registry's copy is pulled, not built.
    docker_engine.remove(plan.image)
    docker_engine.remove(remote)
    ensure_base(docker_engine, plan, settings, emit, shared)
    assert lines == [f"Pulling the base image {remote}"]
    assert docker_engine.image_id(plan.image) is not None


def test_a_tag_holding_other_content_is_not_used(docker_engine, local_registry):
    """Under a base's name and content tag, an image of other content (its label says
    so) is refused and removed, and the base is built instead."""
    registry = local_registry
    settings = Settings.from_env()
    plan, impostor = tiny_base(settings.os_image), tiny_base(settings.os_image)
    directory = f"{registry}/{TEST_PREFIX}"
    lines: list[str] = []
    shared = SharedBases(docker_engine, directory, lambda e: lines.append(e.message))
    ensure_base(docker_engine, impostor, settings, lambda e: None, None)
    remote = shared_name(plan, directory)
    docker_engine.tag(impostor.image, remote)
    docker_engine.push(remote, lambda e: None)
    docker_engine.remove(remote)

    assert not shared.pull(plan)
    assert lines[-1] == (f"Base image {remote} is not the image of this content (its "
                         f"content hash is {impostor.content_hash}); building it here")
    assert docker_engine.image_id(remote) is None
    assert docker_engine.image_id(plan.image) is None


def test_a_base_that_cannot_be_pushed_is_a_warning(docker_engine):
    settings = Settings.from_env()
    plan = tiny_base(settings.os_image)
    ensure_base(docker_engine, plan, settings, lambda e: None, None)
    lines: list[str] = []
    # Nothing listens on port 9 of loopback: the registry is down.
    SharedBases(docker_engine, "localhost:9/",
                lambda e: lines.append(e.message)).publish(plan)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Warning: the base image {shared_name(plan, 'localhost:9/')}"
                               " was not pushed (")
    assert lines[0].endswith("); fresh nodes will build it")


def test_a_base_built_without_its_label_is_labelled_when_pushed(docker_engine, tmp_path,
                                                                local_registry):
    """Bases built by an earlier pangeo-binder carry no content label: publishing one
    adds it (no new layer), so fresh nodes can check what they pull."""
    registry = local_registry
    plan = tiny_base(Settings.from_env().os_image)
    (tmp_path / "Dockerfile").write_text(plan.files["Dockerfile"])
    docker_engine.build(tmp_path, "Dockerfile", plan.image, lambda e: None)
    unlabelled = docker_engine.client.images.get(plan.image)
    assert CONTENT_LABEL not in (unlabelled.labels or {})

    directory = f"{registry}/{TEST_PREFIX}"
    SharedBases(docker_engine, directory, lambda e: None).publish(plan)
    labelled = docker_engine.client.images.get(plan.image)
    assert labelled.labels[CONTENT_LABEL] == plan.content_hash
    assert labelled.attrs["RootFS"]["Layers"] == unlabelled.attrs["RootFS"]["Layers"]
    docker_engine.remove(plan.image)
    docker_engine.remove(shared_name(plan, directory))
    assert SharedBases(docker_engine, directory, lambda e: None).pull(plan)
    assert docker_engine.client.images.get(plan.image).id == labelled.id


def test_bases_travel_through_a_registry_behind_credentials(docker_engine, tmp_path,
                                                            monkeypatch, registry_commands):
    """BinderHub hands build pods their push credentials; bases are pushed and pulled
    with them, and without them a pull is one line, then a build."""
    from tests.helpers.registries import USER, htpasswd_registry

    password = "base-" + uuid.uuid4().hex
    registry = htpasswd_registry(tmp_path / "registry", password)
    try:
        plan = tiny_base(Settings.from_env().os_image)
        ensure_base(docker_engine, plan, Settings.from_env(), lambda e: None, None)
        directory = f"{registry.host}/{TEST_PREFIX}"
        remote = shared_name(plan, directory)
        lines: list[str] = []
        shared = SharedBases(docker_engine, directory,
                             lambda e: None if e.detail else lines.append(e.message))
        monkeypatch.setenv("CONTAINER_ENGINE_REGISTRY_CREDENTIALS", json.dumps(
            {"registry": registry.host, "username": USER, "password": password}))
        shared.publish(plan)
        assert lines == [f"Pushing the base image {remote}"]
        docker_engine.remove(plan.image)
        docker_engine.remove(remote)
        assert shared.pull(plan)

        docker_engine.remove(plan.image)
        docker_engine.remove(remote)
        monkeypatch.delenv("CONTAINER_ENGINE_REGISTRY_CREDENTIALS")
        lines.clear()
        assert not shared.pull(plan)
        assert len(lines) == 2 and lines[1].endswith("; building it here")
        assert password not in "".join(lines)
    finally:
        registry.stop()
