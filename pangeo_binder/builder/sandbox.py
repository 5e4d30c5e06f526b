"""A throwaway, unprivileged container for work on a repository's untrusted input.

Resolving a repository's requirements may build its source distributions, which runs
their setup.py. That code must never run in the process that holds the Docker socket
and the registry and git credentials (in BinderHub, a root build pod with the node's
Docker socket). So uv runs here instead: in a container of the OS + Python image, as
uid 1000, with every capability dropped, no new privileges, bounded processes and
memory, and nothing of the host but a copy of the files it needs. It keeps the network
(PyPI), never a host path, socket or credential. Files go in and out through the
engine's API, so this works with a remote engine too (BinderHub's dind builder).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import DockerError

if TYPE_CHECKING:
    from ..engine import Engine

SANDBOX_LABEL = "pangeo-binder.sandbox"
WORKDIR = "/tmp/pangeo-binder"  # the copied files; uv's cache lives beside them
CA_PATH = f"{WORKDIR}/.ca.pem"


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int
    stdout: str
    stderr: str


def _archive(files: Mapping[str, bytes]) -> bytes:
    """A tar of `files` under the work directory, owned by the sandbox's user."""
    buffer = io.BytesIO()
    folders = {WORKDIR.lstrip("/")} | {
        f"{WORKDIR.lstrip('/')}/{parent.as_posix()}"
        for name in files for parent in PurePosixPath(name).parents if parent.name}
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 1000, 1000
            archive.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{WORKDIR.lstrip('/')}/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 1000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Sandbox:
    """Runs commands in throwaway containers of `image`, made only when first needed
    (`make_image` builds it), with `ca_bundle` (the proxy's CA, a public certificate)
    so that it reaches PyPI."""

    def __init__(self, engine: Engine, make_image: Callable[[], str],
                 ca_bundle: Path | None) -> None:
        self.engine = engine
        self._make_image = make_image
        self.ca_bundle = ca_bundle

    @cached_property
    def image(self) -> str:
        return self._make_image()

    def run(self, command: Sequence[str], files: Mapping[str, bytes], *,
            workdir: str = "", timeout: int = 900) -> SandboxResult:
        """Run `command` in a new container holding `files` (relative names) under the
        work directory, from `workdir` below it; the container is removed afterwards,
        whatever happens."""
        import docker.errors
        import requests.exceptions

        environment = {"HOME": WORKDIR, "UV_CACHE_DIR": f"{WORKDIR}/.uv-cache",
                       "NO_COLOR": "1", "UV_PYTHON_DOWNLOADS": "never"}
        files = dict(files)
        if self.ca_bundle is not None:
            files[CA_PATH.removeprefix(WORKDIR + "/")] = self.ca_bundle.read_bytes()
            environment.update(SSL_CERT_FILE=CA_PATH, PIP_CERT=CA_PATH,
                               REQUESTS_CA_BUNDLE=CA_PATH)
        try:
            container = self.engine.client.containers.create(
                self.image, list(command), entrypoint=[], user="1000:1000",
                working_dir=f"{WORKDIR}/{workdir}".rstrip("/"), environment=environment,
                cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=512,
                mem_limit="4g", labels={SANDBOX_LABEL: "1"},
            )
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot create a sandbox container: {exc.explanation}") from None
        try:
            container.put_archive("/", _archive(files))
            container.start()
            try:
                status = container.wait(timeout=timeout)
            except requests.exceptions.RequestException:  # the wait timed out
                raise DockerError(f"the sandbox took longer than {timeout} s") from None
            return SandboxResult(
                exit_code=int(status.get("StatusCode", 1)),
                stdout=container.logs(stdout=True, stderr=False).decode(errors="replace"),
                stderr=container.logs(stdout=False, stderr=True).decode(errors="replace"))
        except docker.errors.APIError as exc:
            raise DockerError(f"the sandbox container failed: {exc.explanation}") from None
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
