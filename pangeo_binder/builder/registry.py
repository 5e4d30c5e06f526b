"""Asking a registry whether it holds an image, with the builder's credentials.

The Docker engine asks (its distribution inspect, through docker-py), so the registry's
own auth scheme is spoken by a maintained client: basic auth, or the Bearer token flow
of Docker Hub, GHCR and Artifact Registry (`WWW-Authenticate: Bearer` -> token endpoint
-> retry). The engine also knows which registries speak plain HTTP (loopback ones, and
any configured as insecure). The credentials are the push's: CONTAINER_ENGINE_REGISTRY_
CREDENTIALS, else the docker config (see `credentials`).
"""

from __future__ import annotations

import docker.auth
import docker.errors

from ..credentials import REGISTRY_CREDENTIALS_ENV, redact, registry_auth
from ..engine import Engine
from ..errors import PangeoBinderError

# How engines and registries say "who are you?" or "not for you".
_DENIED = ("no basic auth credentials", "unauthorized", "authentication required",
           "denied", "forbidden")


class RegistryError(PangeoBinderError):
    """The registry cannot be asked whether an image exists."""


def _names(image: str) -> tuple[str, str]:
    """(registry, repository) of a fully named image."""
    name = image.rpartition(":")[0] if ":" in image.rpartition("/")[2] else image
    host, _, repository = name.partition("/")
    if not repository or not ("." in host or ":" in host or host == "localhost"):
        raise RegistryError(f"{image} names no registry: give an image prefix that "
                            "starts with one (registry.example.org/binder/)")
    return docker.auth.resolve_repository_name(name)[0], repository


def _configured(registry: str) -> bool:
    """Whether the docker config holds credentials for `registry`."""
    try:
        return bool(docker.auth.resolve_authconfig(docker.auth.load_config(), registry))
    except docker.errors.DockerException:
        return False


def image_in_registry(image: str, engine: Engine | None = None) -> bool:
    """Whether the registry holds `image`."""
    registry, repository = _names(image)
    if engine is None:
        from ..settings import Settings

        engine = Engine(Settings.from_env().docker_cli)
    auth = registry_auth(registry)
    try:
        engine.client.api.inspect_distribution(image, auth_config=auth)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        reason = " ".join(str(exc.explanation or exc).split())
        if exc.status_code in (401, 403) or any(w in reason.lower() for w in _DENIED):
            if auth is not None or _configured(registry):
                given = REGISTRY_CREDENTIALS_ENV if auth is not None else "the docker config"
                raise RegistryError(redact(
                    f"{registry} refused the credentials from {given} to read "
                    f"{repository} ({reason})")) from None
            raise RegistryError(
                f"{registry} wants credentials to read {repository}: set "
                f"{REGISTRY_CREDENTIALS_ENV} or log in (docker login {registry})") from None
        raise RegistryError(redact(f"cannot ask {registry} about {repository}: {reason}")
                            ) from None
    return True
