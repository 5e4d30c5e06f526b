"""Credentials as BinderHub's build pods get them, on the real engine and real registries.

A private repository (git's smart HTTP behind basic auth) is fetched with
GIT_CREDENTIAL_ENV; images are pushed to, and looked up in, registries behind auth
(htpasswd, and `auth: token` with a stand-in for Docker Hub's token service) with
CONTAINER_ENGINE_REGISTRY_CREDENTIALS or a docker config. No credential appears in a
command line, the checkout's .git/config, the output, or the image (config, labels,
history, layers).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from pangeo_binder.hub.badge import BinderRepo
from pangeo_binder.settings import Settings
from pangeo_binder.spec import parse_source
from tests.helpers.cli import TEST_PREFIX, run_builder, run_cli
from tests.helpers.git_server import PrivateGitServer
from tests.helpers.registries import USER, htpasswd_registry, token_registry
from tests.helpers.repos import git_repo

RUN = uuid.uuid4().hex[:8]
GIT_PASSWORD = f"git-pw-{RUN}"
REGISTRY_PASSWORD = f"registry-pw-{RUN}"
GIT_CREDENTIALS = f"username=ada\npassword={GIT_PASSWORD}"


def registry_credentials(registry: str, password: str = REGISTRY_PASSWORD) -> str:
    return json.dumps({"registry": registry, "username": USER, "password": password})


@pytest.fixture(scope="module")
def git_server(tmp_path_factory) -> PrivateGitServer:
    """Private repositories whose content is this run's own, so each is built here for
    real rather than found in the engine's cache: two Pangeo builds, and `small`, whose
    own Dockerfile makes a small image (a fresh registry gets it in seconds)."""
    root = tmp_path_factory.mktemp("git")
    (root / "served").mkdir()
    server = PrivateGitServer(root / "served", "ada", GIT_PASSWORD)
    for name in ("builder", "cli"):
        server.add(name, git_repo(root / name, {"analysis.ipynb": "{}",
                                                "README.md": f"{name} {RUN}\n"}))
    server.add("small", git_repo(root / "small", {"Dockerfile": (
        f"FROM {Settings.from_env().os_image}\n"
        # What the smoke test of a repository's own Dockerfile runs.
        "RUN printf '#!/bin/sh\\necho 0\\n' > /usr/local/bin/jupyter "
        "&& chmod 755 /usr/local/bin/jupyter\n"
        "COPY . /srv/repo/\n"
        # Not root: a repository's own image that runs as root is refused.
        "USER 1000\n"
        f"LABEL run={RUN}\n")}))
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def basic_registry(docker_engine, registry_commands, tmp_path_factory):
    registry = htpasswd_registry(tmp_path_factory.mktemp("basic"), REGISTRY_PASSWORD)
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def bearer_registry(docker_engine, registry_commands, tmp_path_factory):
    registry, issuer = token_registry(tmp_path_factory.mktemp("token"), REGISTRY_PASSWORD)
    yield registry, issuer
    registry.stop()
    issuer.shutdown()


class Spy:
    """Wrappers around git and the docker CLI that record every command line, and the
    checkout's .git/config after each git command, then run the real program."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        self.commands = root / "commands.log"
        self.configs = root / "git-configs.log"
        self.commands.touch()
        self.configs.touch()
        git = self.bin / "git"
        git.write_text(f"""#!/bin/sh
printf 'git %s\\n' "$*" >> '{self.commands}'
'{shutil.which("git")}' "$@"
code=$?
if [ -f .git/config ]; then cat .git/config >> '{self.configs}'; fi
exit $code
""")
        docker = self.bin / "docker"
        docker.write_text(f"""#!/bin/sh
printf 'docker %s\\n' "$*" >> '{self.commands}'
exec '{Settings.from_env().docker_cli}' "$@"
""")
        git.chmod(0o755)
        docker.chmod(0o755)

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}",
                "PANGEO_BINDER_DOCKER": str(self.bin / "docker")}


@pytest.fixture
def spy(tmp_path) -> Spy:
    return Spy(tmp_path / "spy")


def no_docker_config(tmp_path: Path) -> dict[str, str]:
    """An empty docker config: whatever this machine's ~/.docker holds is not used."""
    empty = tmp_path / "no-docker-config"
    empty.mkdir(exist_ok=True)
    return {"DOCKER_CONFIG": str(empty)}


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    """The builder's output: every line, on stdout and stderr, is a JSON event."""
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


def layers_holding(image: str, markers: list[bytes]) -> tuple[set[bytes], int]:
    """Which markers the files of `docker save IMAGE` (layers, config) hold, and how
    many files there were."""
    saved = subprocess.Popen([Settings.from_env().docker_cli, "save", image],
                             stdout=subprocess.PIPE)
    found, files = set(), 0
    longest = max(len(m) for m in markers)
    with tarfile.open(fileobj=saved.stdout, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            files += 1
            stream = archive.extractfile(member)
            tail = b""
            while chunk := stream.read(1 << 20):
                window = tail + chunk
                found |= {m for m in markers if m in window}
                tail = window[-longest:]
    assert saved.wait() == 0
    return found, files


def assert_nowhere(secrets: list[str], output: str, spy: Spy, docker_engine=None,
                   image: str | None = None, layers: bool = False,
                   checkout: bool = True) -> None:
    """None of `secrets` in the output; given an image, in its config, labels or history,
    nor (with `layers`) its layers; nor in a recorded command line or .git/config."""
    for secret in secrets:
        assert secret not in output
    if image is not None:
        attributes = json.dumps(docker_engine.client.images.get(image).attrs)
        history = json.dumps(docker_engine.client.api.history(image))
        assert "org.opencontainers.image.source" in attributes
        for secret in secrets:
            assert secret not in attributes
            assert secret not in history
        if layers:
            found, files = layers_holding(image, [s.encode() for s in secrets])
            assert files > 2 and found == set()
    commands, configs = spy.commands.read_text(), spy.configs.read_text()
    assert "git -c credential.helper= -c credential.helper=" in commands  # the spy saw git
    assert "[core]" in configs or not checkout  # ... and the checkout's config
    for secret in secrets:
        assert secret not in commands
        assert secret not in configs


@pytest.fixture(scope="module")
def built(git_server, basic_registry, docker_engine, tmp_path_factory):
    """The private repository built by the builder entry point as a build pod runs it:
    git credentials in GIT_CREDENTIAL_ENV, registry credentials in
    CONTAINER_ENGINE_REGISTRY_CREDENTIALS, the image named as BinderHub names it."""
    spy = Spy(tmp_path_factory.mktemp("spy"))
    url = git_server.url("builder")
    source = parse_source(url)
    commit = subprocess.run(["git", "ls-remote", git_server.url("builder", f"ada:{GIT_PASSWORD}"),
                             "main"], capture_output=True, text=True, check=True).stdout[:40]
    image = BinderRepo.of(source).image_name(f"{basic_registry.host}/{TEST_PREFIX}binder-",
                                             commit)
    result = run_builder(f"--ref={commit}", f"--image={image}", "--push", url, env={
        **spy.env(), **no_docker_config(tmp_path_factory.mktemp("home")),
        "GIT_CREDENTIAL_ENV": GIT_CREDENTIALS,
        "CONTAINER_ENGINE_REGISTRY_CREDENTIALS": registry_credentials(basic_registry.host)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return image, result, spy, commit


def test_the_builder_fetches_a_private_repository_and_pushes_with_registry_credentials(
        built, basic_registry, docker_engine):
    image, result, spy, _ = built
    events = json_lines(result)
    assert events[-1] == {"phase": "built", "message": f"Built {image}\n", "imageName": image}
    assert "docker build" in spy.commands.read_text()  # built here, with the secrets about
    pushed = docker_engine.client.api.inspect_distribution(
        image, auth_config={"username": USER, "password": REGISTRY_PASSWORD})
    assert pushed["Descriptor"]["digest"].startswith("sha256:")
    assert_nowhere([GIT_PASSWORD, REGISTRY_PASSWORD], result.stdout + result.stderr, spy,
                   docker_engine, image, layers=True)


def test_the_cli_builds_a_private_repository_and_pushes_with_a_docker_config(
        git_server, basic_registry, docker_engine, spy, tmp_path):
    prefix = f"{basic_registry.host}/{TEST_PREFIX}"
    env = {**spy.env(), **no_docker_config(tmp_path), "GIT_CREDENTIAL_ENV": GIT_CREDENTIALS}
    refused = run_cli("build", git_server.url("cli"), "--push", "--image-prefix", prefix,
                      env=env)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith("pangeo-binder: error: cannot push ")
    assert "no basic auth credentials" in refused.stderr.splitlines()[-1]

    auth = base64.b64encode(f"{USER}:{REGISTRY_PASSWORD}".encode()).decode()
    config = tmp_path / "docker-config"  # as BinderHub mounts its push secret
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {basic_registry.host:
                                                              {"auth": auth}}}))
    result = run_cli("build", git_server.url("cli"), "--ref", "main", "--push",
                     "--image-prefix", prefix, env={**env, "DOCKER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr[-3000:]
    image = result.stdout.strip()
    assert image.startswith(prefix)
    assert "docker build" in spy.commands.read_text()
    docker_engine.client.api.inspect_distribution(
        image, auth_config={"username": USER, "password": REGISTRY_PASSWORD})
    assert_nowhere([GIT_PASSWORD, REGISTRY_PASSWORD, auth],
                   refused.stdout + refused.stderr + result.stdout + result.stderr, spy,
                   docker_engine, image)


def badge_check(url: str, prefix: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_cli("badge", url, "--hub", "https://hub.example.org", "--check",
                   "--image-prefix", prefix, env=env)


def test_badge_check_reads_the_registry_with_credentials_and_says_one_line_without(
        built, git_server, basic_registry, spy, tmp_path):
    image, *_ = built
    url, host = git_server.url("builder"), basic_registry.host
    prefix = f"{host}/{TEST_PREFIX}binder-"
    env = {**spy.env(), **no_docker_config(tmp_path), "GIT_CREDENTIAL_ENV": GIT_CREDENTIALS}
    with_credentials = {**env, "CONTAINER_ENGINE_REGISTRY_CREDENTIALS":
                        registry_credentials(f"http://{host}")}
    results = []

    found = badge_check(url, prefix, with_credentials)
    assert (found.returncode, found.stderr) == (0, f"built: {image}\n")
    other = badge_check(url, f"{host}/{TEST_PREFIX}other-", with_credentials)
    assert other.returncode == 1
    assert other.stderr.startswith(f"not built yet: {host}/{TEST_PREFIX}other-")

    auth = base64.b64encode(f"{USER}:{REGISTRY_PASSWORD}".encode()).decode()
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "docker-config" / "config.json").write_text(
        json.dumps({"auths": {host: {"auth": auth}}}))
    from_config = badge_check(url, prefix,
                              {**env, "DOCKER_CONFIG": str(tmp_path / "docker-config")})
    assert (from_config.returncode, from_config.stderr) == (0, f"built: {image}\n")

    repository = image.partition("/")[2].rpartition(":")[0]
    for credentials, line in [
        (None, f"{host} wants credentials to read {repository}: set "
               f"CONTAINER_ENGINE_REGISTRY_CREDENTIALS or log in (docker login {host})"),
        (registry_credentials(host, "wrong-" + REGISTRY_PASSWORD),
         f"{host} refused the credentials from CONTAINER_ENGINE_REGISTRY_CREDENTIALS to "
         f"read {repository} (unauthorized: authentication required)"),
        (f"not json {REGISTRY_PASSWORD}", "CONTAINER_ENGINE_REGISTRY_CREDENTIALS must be "
         "JSON with registry, username and password"),
    ]:
        extra = {"CONTAINER_ENGINE_REGISTRY_CREDENTIALS": credentials} if credentials else {}
        result = badge_check(url, prefix, {**env, **extra})
        assert (result.returncode, result.stderr) == (1, f"pangeo-binder: error: {line}\n")
        results.append(result)

    no_git = badge_check(url, prefix, with_credentials | {"GIT_CREDENTIAL_ENV": ""})
    assert no_git.returncode == 1
    assert no_git.stderr == (f"pangeo-binder: error: cannot read {url}: fatal: "
                             f"Authentication failed for '{url}/'\n")
    output = "".join(r.stdout + r.stderr for r in [found, other, from_config, no_git, *results])
    assert_nowhere([GIT_PASSWORD, REGISTRY_PASSWORD, auth], output, spy, checkout=False)


def test_a_registry_with_token_auth_is_pushed_to_and_read_through_the_bearer_flow(
        git_server, bearer_registry, docker_engine, spy, tmp_path):
    registry, issuer = bearer_registry
    assert registry.challenge().startswith(f'Bearer realm="{issuer.realm}"')
    url, prefix = git_server.url("small"), f"{registry.host}/{TEST_PREFIX}binder-"
    commit = subprocess.run(["git", "ls-remote", git_server.url("small", f"ada:{GIT_PASSWORD}"),
                             "main"], capture_output=True, text=True, check=True).stdout[:40]
    image = BinderRepo.of(parse_source(url)).image_name(prefix, commit)
    env = {**spy.env(), **no_docker_config(tmp_path), "GIT_CREDENTIAL_ENV": GIT_CREDENTIALS}
    with_credentials = {**env, "CONTAINER_ENGINE_REGISTRY_CREDENTIALS":
                        registry_credentials(registry.host)}

    assert badge_check(url, prefix, with_credentials).stderr == f"not built yet: {image}\n"
    pushed = run_builder(f"--ref={commit}", f"--image={image}", "--push", url,
                         env=with_credentials)
    assert pushed.returncode == 0, pushed.stdout[-3000:]
    assert json_lines(pushed)[-1]["imageName"] == image
    found = badge_check(url, prefix, with_credentials)
    assert (found.returncode, found.stderr) == (0, f"built: {image}\n")
    assert issuer.granted >= 3  # the engine asked the token service, with the credentials

    anonymous = badge_check(url, prefix, env)
    repository = image.partition("/")[2].rpartition(":")[0]
    assert (anonymous.returncode, anonymous.stderr) == (
        1, f"pangeo-binder: error: {registry.host} wants credentials to read {repository}: "
           "set CONTAINER_ENGINE_REGISTRY_CREDENTIALS or log in "
           f"(docker login {registry.host})\n")
    assert issuer.anonymous >= 1
    output = "".join(r.stdout + r.stderr for r in [pushed, found, anonymous])
    assert_nowhere([GIT_PASSWORD, REGISTRY_PASSWORD], output, spy, docker_engine, image,
                   layers=True)


def test_build_from_a_workshop_checks_and_pushes_with_registry_credentials(
        git_server, bearer_registry, spy, tmp_path):
    registry, _ = bearer_registry
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(f"name: creds-{RUN}\nimage_prefix: {registry.host}/{TEST_PREFIX}ws-\n"
                        f"repos:\n  - {git_server.url('small')}\n")
    env = {**spy.env(), **no_docker_config(tmp_path), "GIT_CREDENTIAL_ENV": GIT_CREDENTIALS,
           "CONTAINER_ENGINE_REGISTRY_CREDENTIALS": registry_credentials(registry.host)}
    first = run_cli("build", "--from", str(workshop), "--json-logs", env=env)
    assert first.returncode == 0, first.stdout[-3000:]
    again = run_cli("build", "--from", str(workshop), "--json-logs", env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "pushing" in [event["phase"] for event in json_lines(first)]
    events = json_lines(again)
    assert "pushing" not in [event["phase"] for event in events]  # found in the registry
    assert any(event["message"].startswith(f"{git_server.url('small')}: Already in the "
                                           "registry: ") for event in events)
    last = events[-1]
    assert last["phase"] == "built" and last["message"].startswith("cached")
    assert last["imageName"].startswith(f"{registry.host}/{TEST_PREFIX}ws-")
    assert_nowhere([GIT_PASSWORD, REGISTRY_PASSWORD],
                   first.stdout + first.stderr + again.stdout + again.stderr, spy)


@pytest.mark.parametrize("credentials, line", [
    (f"username=ada\npassword=wrong-{GIT_PASSWORD}",
     "cannot read {url}: fatal: Authentication failed for '{url}/'"),
    (f"tok3n-{GIT_PASSWORD}",  # a bare token, which git would echo in a warning
     "GIT_CREDENTIAL_ENV must be what a git credential helper prints: key=value lines "
     "such as username=NAME and password=TOKEN"),
], ids=["wrong", "malformed"])  # fixed: every test worker must collect the same names
def test_a_wrong_or_malformed_git_credential_is_one_line_without_it(git_server, spy,
                                                                    credentials, line):
    url = git_server.url("cli")
    result = run_cli("build", url, "--json-logs",
                     env={**spy.env(), "GIT_CREDENTIAL_ENV": credentials})
    assert result.returncode == 1
    for secret in credentials.splitlines():
        assert secret not in result.stdout + result.stderr
    assert credentials not in spy.commands.read_text()
    assert json_lines(result)[-1] == {"phase": "failed",
                                      "message": line.format(url=url) + "\n"}
