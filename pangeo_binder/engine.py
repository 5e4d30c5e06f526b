"""The Docker engine: BuildKit builds through the docker CLI, the rest through docker-py.

Builds go through the CLI because docker-py only drives the legacy builder, and the
build needs BuildKit for secrets (the CA bundle) and cache mounts (uv's cache).

A rebuild of unchanged content only asks the engine whether an image exists. On a local
socket that one question is a plain HTTP GET (`_SocketAPI`): importing docker-py and
requests would take longer than the whole answer, so they load only when more is asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .credentials import image_auth
from .errors import BuildError, DockerError
from .events import Emit, Event, Phase

if TYPE_CHECKING:
    import docker

SMOKE_LABEL = "pangeo-binder.smoke-test"


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    output: str


_STEP_HEADER = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")
_STEP_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*\S.*)$")
_STEP_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
# A line a build step prints for the user (templates/postbuild-compat): shown as a
# notice even when the build's own output is not.
NOTICE_PREFIX = "pangeo-binder-notice: "


def _failure_reason(lines: Sequence[str]) -> str:
    """The failing step, its exit code and its last output line, from BuildKit's plain
    progress ("#4 [2/3] RUN ...", "#4 2.479 E: Unable to locate ...", "#4 ERROR: ...")."""
    headers: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for line in lines:
        if match := _STEP_ERROR.match(line):
            step, error = match[1], match[2]
            header = " ".join(headers.get(step, "").split())
            header = header if len(header) <= 70 else header[:67] + "..."
            code = re.search(r"exit code: (\d+)", error)
            what = f"exit code {code[1]}" if code else error
            last = outputs.get(step)
            return f"{header} ({what})" + (f": {last}" if last else "")
        if match := _STEP_HEADER.match(line):
            headers[match[1]] = match[2]
        elif match := _STEP_OUTPUT.match(line):
            outputs[match[1]] = match[2].strip()
    errors = [ln.strip() for ln in lines if ln.lower().lstrip().startswith("error")]
    return (errors or [ln.strip() for ln in lines if ln.strip()] or ["no output"])[-1]


def _not_running(reason: str) -> DockerError:
    return DockerError(
        f"Docker is not running or not reachable ({reason}); start the Docker "
        "engine (scripts/setup-docker does it on Debian) and try again")


class _SocketAPI:
    """The two read-only questions of a cache hit (is the engine there, which image has
    this name), asked over the engine's local socket. HTTP/1.0 keeps the exchange to one
    request and one whole response (no chunking, the engine closes the connection), so
    it needs no HTTP library."""

    def __init__(self, path: str) -> None:
        self.path = path

    def get(self, url: str) -> tuple[int, bytes]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(60)
                connection.connect(self.path)
                connection.sendall(f"GET {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                answer = b"".join(iter(lambda: connection.recv(65536), b""))
        except OSError as exc:
            raise _not_running(exc.strerror or type(exc).__name__) from None
        head, _, body = answer.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1:2]
        if not status or not status[0].isdigit():
            raise _not_running("its API gave no HTTP answer")
        return int(status[0]), body

    def ping(self) -> None:
        status, _ = self.get("/_ping")
        if status != 200:
            raise _not_running(f"its API answered {status}")

    def image_id(self, ref: str) -> str | None:
        status, body = self.get(f"/images/{urllib.parse.quote(ref, safe='/:@')}/json")
        if status == 404:
            return None
        if status != 200:
            message = json.loads(body or b"{}").get("message", f"status {status}")
            raise DockerError(f"cannot inspect {ref}: {message}")
        return json.loads(body)["Id"]


def _local_socket() -> _SocketAPI | None:
    """The engine's API over its unix socket, when that is how it is reached (the
    default, and BinderHub's mounted socket or dind's); None for a TCP or TLS engine,
    which docker-py's configuration handles."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return _SocketAPI(host.removeprefix("unix://")) if host.startswith("unix://") else None


class Engine:
    def __init__(self, docker_cli: str) -> None:
        self.docker_cli = docker_cli
        self._socket = _local_socket()

    @cached_property
    def client(self) -> docker.DockerClient:
        import docker

        try:
            client = docker.from_env(timeout=600)
            client.ping()
        except docker.errors.DockerException as exc:
            raise _not_running(str(exc).split("(", 1)[0].strip() or "no answer") from None
        return client

    def check(self) -> None:
        """Fail early, before any work, when the engine or its CLI is missing."""
        if self._socket is not None:
            self._socket.ping()
        else:
            _ = self.client
        if not Path(self.docker_cli).is_file() and "/" in self.docker_cli:
            raise DockerError(f"docker CLI {self.docker_cli} not found; set PANGEO_BINDER_DOCKER")

    def image_id(self, ref: str) -> str | None:
        if self._socket is not None:
            return self._socket.image_id(ref)
        import docker.errors

        try:
            return self.client.images.get(ref).id
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot inspect {ref}: {exc.explanation}") from None

    def image_with_label(self, key: str, value: str) -> str | None:
        """The id of a local image built with label key=value, if any. An image committed
        from a container (`docker commit`) keeps its source's labels, not its contents:
        a session's changes would pass for the image it started from, so such an image
        (the engine records its container) is never the answer."""
        images = self.client.images.list(filters={"label": f"{key}={value}"})
        built = [image for image in images if not image.attrs.get("Container")]
        return built[0].id if built else None

    def pull(self, ref: str) -> bool:
        import docker.errors

        try:
            self.client.images.pull(ref)
        except docker.errors.APIError:
            return False
        return True

    def build(self, context: Path, dockerfile: str, tag: str, emit: Emit, *,
              build_args: Mapping[str, str] = {}, labels: Mapping[str, str] = {},
              ca_bundle: Path | None = None, target: str | None = None) -> None:
        import subprocess  # here: a cache hit runs no docker CLI

        command = [self.docker_cli, "build", "--progress=plain", "--file",
                   str(context / dockerfile), "--tag", tag]
        if target:
            command += ["--target", target]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        if ca_bundle is not None:
            command += ["--secret", f"id=ca,src={ca_bundle}"]
        command.append(str(context))
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, env=env,
                                       errors="replace")
        except OSError as exc:
            raise DockerError(f"cannot run {self.docker_cli}: {exc.strerror}") from None
        tail: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                tail = [*tail[-199:], line]
                emit(Event(Phase.BUILDING, line, detail=True))
                if (match := _STEP_OUTPUT.match(line)) and match[2].startswith(NOTICE_PREFIX):
                    emit(Event(Phase.BUILDING,
                               "Notice: " + match[2].removeprefix(NOTICE_PREFIX)))
            code = process.wait()
        finally:
            if process.poll() is None:  # interrupted: do not leave a build running
                process.kill()
                process.wait()
        if code != 0:
            raise BuildError(f"docker build failed: {_failure_reason(tail)}")

    def label(self, source: str, target: str, labels: Mapping[str, str], emit: Emit) -> None:
        """Name `source` `target` with `labels` added: a configuration change (a
        `FROM`-only build), no new layer."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pangeo-binder-label-") as context:
            (Path(context) / "Dockerfile").write_text(f"FROM {source}\n")
            self.build(Path(context), "Dockerfile", target, emit, labels=labels)

    def tag(self, source: str, target: str) -> None:
        repository, _, tag = target.rpartition(":")
        self.client.images.get(source).tag(repository, tag)

    def remove(self, ref: str) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.ImageNotFound):
            self.client.images.remove(ref)

    def run(self, image: str, command: Sequence[str], timeout: int = 300, *,
            entrypoint: Sequence[str] | None = None, user: str | None = None,
            read_only: bool = False, stderr: bool = True) -> RunResult:
        """Run a command in a throwaway container (no network) and remove it. An
        `entrypoint` replaces the image's (whose start script is the image's to change);
        `read_only` mounts its file system so; without `stderr` the output is stdout's."""
        options = {"entrypoint": list(entrypoint)} if entrypoint is not None else {}
        container = self.client.containers.create(
            image, list(command), network_disabled=True, labels={SMOKE_LABEL: "1"},
            user=user, read_only=read_only, **options,
        )
        try:
            container.start()
            status = container.wait(timeout=timeout)
            output = container.logs(stdout=True, stderr=stderr).decode(errors="replace")
            return RunResult(exit_code=int(status.get("StatusCode", 1)), output=output)
        finally:
            container.remove(force=True)

    def push(self, ref: str, emit: Emit) -> None:
        """Push with CONTAINER_ENGINE_REGISTRY_CREDENTIALS, else the docker config's."""
        import docker.errors

        repository, _, tag = ref.rpartition(":")
        auth = image_auth(ref)
        last = None
        try:
            for progress in self.client.images.push(repository, tag, stream=True, decode=True,
                                                    auth_config=auth):
                if "error" in progress:
                    raise DockerError(f"cannot push {ref}: {progress['error']}")
                status = progress.get("status", "")
                line = f"{progress['id']}: {status}" if "id" in progress else status
                if status and line != last and "progress" not in progress:
                    emit(Event(Phase.PUSHING, line, detail=True))
                    last = line
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot push {ref}: {exc.explanation}") from None
