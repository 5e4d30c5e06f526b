"""Throwaway repositories: files written, committed with git, served over HTTP."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def write_tree(root: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name in executable or name.endswith(("postBuild", "start")):
            path.chmod(0o755)
    return root


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_repo(root: Path, files: dict[str, str]) -> Path:
    """A committed git repository (branch main) holding `files`."""
    write_tree(root, files)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


@contextlib.contextmanager
def served_notebooks(root: Path, readme: str) -> Iterator[tuple[dict[str, str], str]]:
    """A notebook repository as a `file://` URL and served by git's HTTP backend on
    loopback ({"file": URL, "http": URL}), and its commit."""
    from tests.helpers.git_server import PrivateGitServer

    work = git_repo(root / "work", {"analysis.ipynb": "{}", "README.md": readme})
    (root / "served").mkdir()
    server = PrivateGitServer(root / "served")
    server.add("notebooks", work)
    try:
        yield ({"file": (root / "served" / "notebooks.git").as_uri(),
                "http": server.url("notebooks")}, git(work, "rev-parse", "HEAD"))
    finally:
        server.shutdown()
