"""Shared fixtures: the real CLI, throwaway repositories, and the Docker engine."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"

# Every image a test builds carries this prefix, so the session can remove exactly those
# (the base images stay: they are the cache that makes repeat runs fast).
TEST_PREFIX = f"pangeo-binder-test-{uuid.uuid4().hex[:8]}/"


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["PANGEO_BINDER_IMAGE_PREFIX"] = TEST_PREFIX
    os.environ.setdefault("PANGEO_BINDER_CACHE_DIR",
                          str(tmp_path_factory.mktemp("pangeo-binder-cache")))
    yield


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
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent / "offline"),
                                         os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "PANGEO_BINDER_TEST_OFFLINE_LOG": str(log)}


def names_asked(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


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
    from git_server import PrivateGitServer

    work = git_repo(root / "work", {"analysis.ipynb": "{}", "README.md": readme})
    (root / "served").mkdir()
    server = PrivateGitServer(root / "served")
    server.add("notebooks", work)
    try:
        yield ({"file": (root / "served" / "notebooks.git").as_uri(),
                "http": server.url("notebooks")}, git(work, "rev-parse", "HEAD"))
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def docker_engine():
    """The real Docker engine; integration tests skip without one unless the test
    command (which sets Docker up) says it must be there."""
    from pangeo_binder.engine import Engine
    from pangeo_binder.errors import DockerError
    from pangeo_binder.settings import Settings

    engine = Engine(Settings.from_env().docker_cli)
    try:
        engine.check()
    except DockerError as exc:
        if os.environ.get("PANGEO_BINDER_REQUIRE_DOCKER"):
            pytest.fail(f"Docker is required here: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    yield engine
    import docker.errors

    for image in engine.client.images.list():
        for tag in image.tags:
            if TEST_PREFIX in tag:  # also under a registry: localhost:5000/<prefix>
                # Untag even where a stopped pod container still refers to the image.
                with contextlib.suppress(docker.errors.APIError):
                    engine.client.images.remove(tag, force=True)


def require_registry() -> str:
    """The local registry's address (scripts/setup-registry); fail under the test
    command, skip elsewhere."""
    registry = os.environ.get("PANGEO_BINDER_TEST_REGISTRY")
    if not registry:
        if os.environ.get("PANGEO_BINDER_REQUIRE_DOCKER"):
            pytest.fail("no local registry: scripts/setup-registry makes one")
        pytest.skip("no local registry (PANGEO_BINDER_TEST_REGISTRY)")
    return registry


@pytest.fixture(scope="module")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local conda channel of small real packages (tests/conda_channel.py)."""
    from conda_channel import make_test_channel

    return make_test_channel(tmp_path_factory.mktemp("channel"))


@pytest.fixture
def conda_env(conda_channel: Path, tmp_path: Path) -> dict[str, str]:
    """Settings for a conda build against `conda_channel`: its channel as conda-forge, the
    test base, a fresh cache, and a TMPDIR a test can check is left empty."""
    from conda_channel import conda_settings

    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    return {**conda_settings(conda_channel, tmp_path / "base.yml"), "TMPDIR": str(scratch),
            "PANGEO_BINDER_CACHE_DIR": str(tmp_path / "cache")}


def sh(engine, image: str, script: str) -> str:
    """The output of `script` run in `image`; it must succeed."""
    result = engine.run(image, ["sh", "-c", script])
    assert result.exit_code == 0, result.output
    return result.output


def containers(engine) -> set[str]:
    """The engine's containers, stopped ones too, except the dev cluster's (the kubelet
    runs its pods on the same engine, cri-dockerd names them k8s_...) and those of the
    other test workers' images (another prefix)."""
    ours = TEST_PREFIX.partition("/")[0]
    theirs = ours.rstrip("0123456789abcdef")  # pangeo-binder-test-
    return {c["Id"] for c in container_rows(engine)
            if not c["Names"][0].startswith("/k8s_")
            and not (theirs in (image := c["Image"]) and ours not in image)}


def container_rows(engine, **filters) -> list[dict]:
    """The engine's containers, stopped ones too, as one listing. docker-py's
    `containers.list` inspects each listed container after listing them all, and one
    that another test removes in between makes it raise, so the listing's own rows
    (Id, Names, Image, Labels) are what is read."""
    return engine.client.api.containers(all=True, filters=filters or None)


def assert_no_container_left(engine, before: set[str], settle: float = 900) -> None:
    """Nothing a command made is left: every container there now and not `before` goes
    away. Other tests run beside this one (scripts/test's two lanes), and their builds' throwaway
    containers (resolver sandboxes, smoke tests) come and go meanwhile, so a new one gets
    up to `settle` seconds (the sandbox's own time limit) to go; one left behind never
    does."""
    deadline = time.monotonic() + settle
    while new := containers(engine) - before:
        assert time.monotonic() < deadline, f"containers left behind: {sorted(new)}"
        time.sleep(2)


def bridge_address(engine) -> str:
    """The host's address on the engine's default bridge, where containers and builds
    reach a server the tests run on the host. Debian's engine (20.10) leaves the
    network's IPAM gateway out and puts it only on the bridge interface, so the
    interface is what is read, as the engine itself does."""
    options = engine.client.networks.get("bridge").attrs.get("Options") or {}
    interface = options.get("com.docker.network.bridge.name", "docker0")
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", interface],
                           capture_output=True, text=True, check=False).stdout.split()
    if "inet" not in shown:
        raise RuntimeError(f"the engine's bridge {interface} has no IPv4 address")
    return shown[shown.index("inet") + 1].partition("/")[0]


def images_named(engine, repository: str) -> list[str]:
    """The tags of `repository` on the engine (a candidate's too)."""
    return [t for image in engine.client.images.list() for t in image.tags
            if t.rpartition(":")[0] == repository]
