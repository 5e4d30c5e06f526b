"""repo2docker's contract, which repositories that work on mybinder.org rely on. Each
fixture repository is built both ways a user meets pangeo-binder: `pangeo-binder build`
and the build pods' entry point (`jupyter-repo2docker`, as BinderHub calls it), and what
it relies on is checked inside the image. Real builds on the local Docker engine."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from pangeo_binder.settings import Settings
from tests.helpers.cli import TEST_PREFIX, run_builder, run_cli
from tests.helpers.engine import assert_no_container_left, containers, images_named, sh
from tests.helpers.repos import git, git_repo

# In every fixture, so that each run builds its images for real instead of finding them.
RUN = uuid.uuid4().hex[:8]


def repository(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    """A committed git repository of this run's own, named `name`."""
    return git_repo(tmp_path / name, {**files, "README.md": f"{name} {RUN}\n"})


def pod_image(repo: Path) -> str:
    return f"{TEST_PREFIX}pod-{repo.name}:{git(repo, 'rev-parse', 'HEAD')[:12]}"


def build_with_cli(repo: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("build", str(repo), *args, env=env)


def build_with_pod(repo: Path, *args: str, env: dict[str, str] | None = None):
    """The build pods' command line, on `repo` as a git URL."""
    return run_builder(f"--ref={git(repo, 'rev-parse', 'HEAD')}", f"--image={pod_image(repo)}",
                       *args, repo.as_uri(), env=env)


def built_both_ways(repo: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """`repo` built through the CLI and through the build pods' entry point; both images."""
    cli = build_with_cli(repo, *args, env=env)
    assert cli.returncode == 0, cli.stderr[-3000:]
    pod = build_with_pod(repo, *args, env=env)
    assert pod.returncode == 0, pod.stdout[-3000:] + pod.stderr[-3000:]
    assert json.loads(pod.stdout.splitlines()[-1])["phase"] == "built"
    return [cli.stdout.strip(), pod_image(repo)]


# ---------------------------------------------------------- a repository's own Dockerfile

def own_dockerfile(last_line: str) -> dict[str, str]:
    """A Dockerfile as repo2docker's documentation writes one: it makes the notebook user
    from the NB_USER and NB_UID build arguments, and then `last_line`."""
    return {"Dockerfile": (
        f"FROM {Settings.from_env().os_image}\n"
        "ARG NB_USER\n"
        "ARG NB_UID\n"
        'RUN useradd --create-home --uid "${NB_UID}" "${NB_USER}" \\\n'
        # A stand-in for Jupyter, all the smoke test of an own Dockerfile asks for (no
        # registry with a Jupyter image is reachable here).
        " && printf '#!/bin/sh\\necho 0\\n' > /usr/local/bin/jupyter \\\n"
        " && chmod 755 /usr/local/bin/jupyter\n"
        "COPY --chown=${NB_UID}:${NB_UID} . /home/${NB_USER}/\n"
        "WORKDIR /home/${NB_USER}\n"
        f"{last_line}\n")}


def test_an_own_dockerfile_gets_the_notebook_user_and_runs_as_it(docker_engine, tmp_path):
    repo = repository(tmp_path, "own-dockerfile", own_dockerfile("USER ${NB_UID}"))
    for image in built_both_ways(repo):
        assert sh(docker_engine, image, "id -u; id -un; pwd").split() == [
            "1000", "jovyan", "/home/jovyan"], image


def test_an_own_dockerfile_that_runs_as_root_is_refused_unless_the_operator_allows_it(
        docker_engine, tmp_path):
    repo = repository(tmp_path, "root-dockerfile", own_dockerfile("# no USER: root"))
    refusal = ("Dockerfile leaves the image running as root (uid 0): end it with "
               "USER ${NB_UID} (or have the operator set PANGEO_BINDER_ALLOW_ROOT=1)")
    before = containers(docker_engine)
    cli = build_with_cli(repo)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.strip().splitlines()[-1] == (
        f"pangeo-binder: error: the built image failed its smoke test: {refusal}")
    pod = build_with_pod(repo)
    assert pod.returncode == 1 and pod.stderr == ""
    assert json.loads(pod.stdout.splitlines()[-1]) == {
        "phase": "failed", "message": f"the built image failed its smoke test: {refusal}\n"}
    for name in (TEST_PREFIX + repo.name, pod_image(repo).rpartition(":")[0]):
        assert images_named(docker_engine, name) == []  # not even a candidate tag
    assert_no_container_left(docker_engine, before)

    for image in built_both_ways(repo, env={"PANGEO_BINDER_ALLOW_ROOT": "1"}):
        assert sh(docker_engine, image, "id -u").strip() == "0"


# ------------------------------------------------------------------------- ~/.local/bin

def test_commands_in_local_bin_are_on_path_in_postbuild_and_sessions(docker_engine,
                                                                     tmp_path):
    repo = repository(tmp_path, "local-bin", {"binder/postBuild": (
        "#!/bin/sh\nset -e\nmkdir -p ~/.local/bin\n"
        "printf '#!/bin/sh\\necho hello from local bin\\n' > ~/.local/bin/local-hello\n"
        "chmod +x ~/.local/bin/local-hello\n"
        # Found already by the rest of the postBuild, as on repo2docker.
        "local-hello\n")})
    for image in built_both_ways(repo):
        # A kernel or a command (the image's PATH) and a terminal (a login shell).
        assert sh(docker_engine, image, "local-hello; bash -lc local-hello").splitlines() == [
            "hello from local bin"] * 2, image


# ----------------------------------------------------------------------- node and npm

# A command-line tool of the repository's own, packed and installed globally by its
# postBuild, as JupyterLab-era postBuilds install theirs (from the repository: the test
# needs no package registry).
NODE_TOOL = {
    "tools/greet/package.json": json.dumps({"name": "greet", "version": "1.0.0",
                                            "bin": {"greet": "greet.js"}}),
    "tools/greet/greet.js": ("#!/usr/bin/env node\n"
                             "console.log(`hello from node ${process.versions.node}`);\n"),
    "binder/postBuild": ("#!/bin/sh\nset -e\nnode --version\n"
                         "cd tools/greet && npm install --global \"$(npm pack --silent)\"\n"
                         "greet\n"),
}


def test_node_and_a_global_npm_install_work_in_postbuild_and_sessions(docker_engine,
                                                                      tmp_path):
    repo = repository(tmp_path, "node-tool", NODE_TOOL)
    for image in built_both_ways(repo):
        labels = docker_engine.client.images.get(image).labels
        node = labels["pangeo-binder.nodejs"].split()[0]
        assert int(node.split(".")[0]) >= 24, labels  # a current LTS
        # A kernel or a command (the image's PATH), and a terminal (a login shell); npm
        # installs into the user's own prefix, which it may write to.
        assert sh(docker_engine, image, "greet; bash -lc greet; npm prefix --global") \
            .splitlines() == [f"hello from node {node}"] * 2 + ["/home/jovyan/.local"], image


# ------------------------------------------------------------------------- runtime.txt

def test_runtime_python_3_is_the_default_python(docker_engine, tmp_path):
    repo = repository(tmp_path, "runtime-python-3", {"runtime.txt": "python-3\n",
                                                     "analysis.ipynb": "{}"})
    for image in built_both_ways(repo):
        # The base's Python, on the Pangeo base itself.
        assert sh(docker_engine, image, "python -c 'import sys, xarray; "
                                        "print(*sys.version_info[:2])'").split() == [
            "3", "11"], image


# ---------------------------------------------------------------------------- --appendix

# What a BinderHub operator's appendix looks like: as root, then back to the notebook user.
APPENDIX = "USER root\nRUN echo appended > /etc/appendix-marker\nUSER ${NB_USER}"


def test_an_appendix_is_added_by_the_cli_as_by_the_build_pods(docker_engine, tmp_path):
    repo = repository(tmp_path, "appendix", {"analysis.ipynb": "{}"})
    # Built first without: a rebuild of the same directory must not answer with it.
    plain = build_with_cli(repo)
    assert plain.returncode == 0, plain.stderr[-3000:]
    for image in built_both_ways(repo, f"--appendix={APPENDIX}"):
        assert sh(docker_engine, image, "cat /etc/appendix-marker; id -u").split() == [
            "appended", "1000"], image
    sh(docker_engine, plain.stdout.strip(), "test ! -e /etc/appendix-marker")
