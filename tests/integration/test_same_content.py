"""Same content, same image: wherever the repository is and however it is named, and
however many builds of it run at once on one engine. Real builds through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import TEST_PREFIX, run_cli
from tests.helpers.engine import container_rows
from tests.helpers.repos import git, git_repo


def notebook_repo(root: Path) -> Path:
    """A new small repository (no extras: only the copy and what follows are built)."""
    cell = {"cell_type": "markdown", "metadata": {}, "source": [uuid.uuid4().hex]}
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return git_repo(root, {"analysis.ipynb": json.dumps(notebook), "README.md": "same\n"})


def build_ok(*args: str) -> tuple[str, str]:
    result = run_cli("build", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip(), result.stderr


def tag(image: str) -> str:
    return image.rpartition(":")[2]


def test_the_tag_is_the_content_not_the_path_nor_how_it_is_named(docker_engine, tmp_path):
    first = notebook_repo(tmp_path / "a" / "same")
    image, _ = build_ok(str(first))

    # The same repository copied elsewhere (with its history, and as plain files).
    moved = tmp_path / "b" / "same"
    shutil.copytree(first, moved, symlinks=True)
    plain = tmp_path / "c" / "same"
    shutil.copytree(first, plain, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    for copy in (moved, plain):
        again, log = build_ok(str(copy))
        assert again == image, f"{copy.relative_to(tmp_path)} got another image"
        assert "Cache hit" in log and "Building" not in log

    # Its git URL at the same commit: another name (from the URL), the same tag.
    by_url, log = build_ok(first.as_uri(), "--ref", git(first, "rev-parse", "HEAD"))
    assert tag(by_url) == tag(image)
    assert "Cache hit" in log and "Building" not in log
    labels = docker_engine.client.images.get(by_url).labels
    assert labels["org.opencontainers.image.source"]  # the source is a label, not the tag

    # A directory is built as it is: an uncommitted change is other content.
    (moved / "README.md").write_text("changed\n")
    changed, _ = build_ok(str(moved))
    assert tag(changed) != tag(image)


def leftovers(engine, repository: str) -> tuple[list[str], list[str]]:
    """Candidate tags and smoke-test containers of `repository`'s builds on the engine
    (other builds may be running beside these tests)."""
    from pangeo_binder.engine import SMOKE_LABEL

    candidates = [t for image in engine.client.images.list() for t in image.tags
                  if t.startswith(f"{repository}:candidate-")]
    smoke = [c["Names"][0].lstrip("/") for c in container_rows(engine, label=SMOKE_LABEL)
             if c["Image"].startswith(f"{repository}:")]
    return candidates, smoke


def test_concurrent_builds_of_one_content_build_once(docker_engine, tmp_path):
    from pangeo_binder.builder.bases import CONTENT_LABEL

    repo = notebook_repo(tmp_path / "together")
    builds = [subprocess.Popen([sys.executable, "-m", "pangeo_binder", "build", str(repo)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=os.environ.copy()) for _ in range(5)]
    results = [(b.wait(timeout=900), *b.communicate()) for b in builds]
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    images = {stdout.strip() for _, stdout, _ in results}
    assert len(images) == 1, images
    image = images.pop()
    logs = [stderr for _, _, stderr in results]
    assert sum(f"Building {image}" in log for log in logs) == 1, "built more than once"
    assert sum("Cache hit" in log for log in logs) == 4
    content = docker_engine.client.images.get(image).labels[CONTENT_LABEL]
    built = docker_engine.client.images.list(filters={"label": f"{CONTENT_LABEL}={content}"})
    assert len(built) == 1
    assert leftovers(docker_engine, image.rpartition(":")[0]) == ([], [])


def start_build(repo: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "pangeo_binder", "build", str(repo)],
                                stdout=subprocess.PIPE, stderr=err, text=True,
                                env=os.environ.copy())


def wait_for(log: Path, text: str, build: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert build.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in time"
        time.sleep(0.05)


@pytest.mark.parametrize("during", ["docker build", "smoke test"])
def test_sigterm_stops_a_build_and_leaves_nothing(docker_engine, tmp_path, during):
    """How Kubernetes stops a build pod: the build ends at once, non-zero, with one
    line, and takes its candidate image and smoke-test container with it."""
    repo = notebook_repo(tmp_path / "stopped")
    if during == "docker build":
        (repo / "postBuild").write_text("#!/bin/sh\nsleep 120\n")
        (repo / "postBuild").chmod(0o755)
    log = tmp_path / "stderr"
    build = start_build(repo, log)
    repository = f"{TEST_PREFIX}stopped"
    if during == "docker build":
        wait_for(log, f"Building {repository}:", build)
        time.sleep(3)  # into the build's steps
    else:
        wait_for(log, f"Smoke-testing {repository}:", build)
        assert leftovers(docker_engine, repository)[0], "no candidate to stop"
    started = time.monotonic()
    build.send_signal(signal.SIGTERM)
    code = build.wait(timeout=60)
    assert time.monotonic() - started < 30
    stderr = log.read_text()
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "pangeo-binder: terminated (SIGTERM)"
    assert build.stdout.read() == ""  # no image name
    assert leftovers(docker_engine, repository) == ([], [])
    assert not [t for image in docker_engine.client.images.list() for t in image.tags
                if t.startswith(f"{repository}:")]


def test_another_machine_state_finds_the_pushed_image(docker_engine, tmp_path, local_registry):
    """Same commit, same image anywhere: built and pushed from one checkout with one
    cache, then asked for from another path with a fresh cache (another build node, or
    the same one after a cache clear), the image is found in the registry, not built."""
    registry = local_registry
    prefix = f"{registry}/{TEST_PREFIX}machine-"
    first = notebook_repo(tmp_path / "node-a" / "tutorial")
    pushed = run_cli("build", str(first), "--push", "--image-prefix", prefix,
                     env={"PANGEO_BINDER_CACHE_DIR": str(tmp_path / "cache-a")})
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    image = pushed.stdout.strip()

    second = tmp_path / "node-b" / "tutorial"
    shutil.copytree(first, second, symlinks=True)
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(f"name: same-content\nimage_prefix: {prefix}\n"
                        f"repos:\n  - {second}\n")
    again = run_cli("build", "--from", str(workshop),
                    env={"PANGEO_BINDER_CACHE_DIR": str(tmp_path / "cache-b")})
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip() == image
    assert "Already in the registry" in again.stderr and "Building" not in again.stderr
