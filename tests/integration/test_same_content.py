"""Same content, same image: wherever the repository is and however it is named, and
however many builds of it run at once on one engine. Real builds through the CLI."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from conftest import git, git_repo, run_cli

pytestmark = pytest.mark.integration


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
