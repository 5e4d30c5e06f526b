"""The real `pangeo-binder` command and the builder's, run as a user or a build pod would,
and where the repository's files are."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = REPO_ROOT / "examples"
# tests/offline/sitecustomize.py, put on a child Python's path by `offline_env`.
OFFLINE = REPO_ROOT / "tests" / "offline"

# Every image a test builds carries this prefix, so the session can remove exactly those
# (the base images stay: they are the cache that makes repeat runs fast).
TEST_PREFIX = f"pangeo-binder-test-{uuid.uuid4().hex[:8]}/"


def run_cli(*args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `pangeo-binder` command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pangeo_binder", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, cwd=cwd, check=False, timeout=1800,
    )


def run_builder(*args: str, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """Run `jupyter-repo2docker` as BinderHub's build pods do (KubernetesBuildExecutor's
    arguments, then `args`: --ref, --image, [--push,] the source): the command installed
    beside this Python, which must be pangeo-binder's builder, as in the builder image."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-repo2docker")), "--no-clean",
         "--no-run", "--json-logs", "--user-name=jovyan", "--user-id=1000", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False,
        timeout=1800)


def offline_env(log: Path) -> dict[str, str]:
    """Settings that make a child Python process one on a machine that reaches no name
    server: tests/offline/sitecustomize.py refuses every lookup but loopback's and writes
    the names asked for to `log` (see `names_asked`)."""
    path = os.pathsep.join(filter(None, [str(OFFLINE), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "PANGEO_BINDER_TEST_OFFLINE_LOG": str(log)}


def names_asked(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []
