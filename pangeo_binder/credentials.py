"""Git and registry credentials, taken the way BinderHub hands them to its build pods.

- `GIT_CREDENTIAL_ENV`: what a git credential helper would print (the lines
  `username=NAME` and `password=TOKEN`). As repo2docker does, git is told to ask a
  helper that echoes the variable, so the value stays in the environment: it never
  reaches a command line, the checkout's .git/config, or a credential store.
- `CONTAINER_ENGINE_REGISTRY_CREDENTIALS`: `{"registry", "username", "password"}`, the
  push credentials BinderHub hands a build pod. When unset, or for another registry, the
  docker config (`~/.docker/config.json`, where BinderHub mounts its push secret, or
  `$DOCKER_CONFIG`) holds them; docker-py reads it itself.

Every secret found here is also scrubbed from any text that leaves the builder
(`redact`), as a second guard behind never putting it anywhere.
"""

from __future__ import annotations

import json
import os
import re

from .errors import PangeoBinderError
from .spec import without_credentials

GIT_CREDENTIAL_ENV = "GIT_CREDENTIAL_ENV"
REGISTRY_CREDENTIALS_ENV = "CONTAINER_ENGINE_REGISTRY_CREDENTIALS"

# A helper that prints the variable; the shell expands it, git never sees its value in
# an argument. The empty helper first drops any configured ones, so no credential store
# is asked, or told to keep the credential.
_GIT_HELPER = '!f() { echo "$GIT_CREDENTIAL_ENV"; }; f'
# Keys of a credential helper's output whose values are secret.
_SECRET_KEYS = {"password", "oauth_refresh_token", "credential"}
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io",
               "registry.hub.docker.com"}


class CredentialError(PangeoBinderError):
    """A credential setting is malformed (its value is never shown)."""


def git_args() -> list[str]:
    """Options for every git command that talks to a remote: the credential helper
    when GIT_CREDENTIAL_ENV is set, nothing otherwise."""
    value = os.environ.get(GIT_CREDENTIAL_ENV)
    if not value:
        return []
    lines = [line for line in value.strip().splitlines() if line.strip()]
    if not lines or any("=" not in line for line in lines):
        raise CredentialError(
            f"{GIT_CREDENTIAL_ENV} must be what a git credential helper prints: key=value "
            "lines such as username=NAME and password=TOKEN")
    return ["-c", "credential.helper=", "-c", f"credential.helper={_GIT_HELPER}"]


def _registry_host(registry: str) -> str:
    host = re.sub(r"^[a-z]+://", "", registry.strip().lower()).split("/", 1)[0]
    return "docker.io" if host in _DOCKER_HUB else host


def _registry_credentials() -> dict[str, str] | None:
    text = os.environ.get(REGISTRY_CREDENTIALS_ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not (isinstance(value, dict) and isinstance(value.get("username"), str)
            and isinstance(value.get("password"), str)
            and isinstance(value.get("registry", ""), str)):
        raise CredentialError(
            f"{REGISTRY_CREDENTIALS_ENV} must be JSON with registry, username and password")
    return value


def registry_auth(registry: str) -> dict[str, str] | None:
    """The auth config for `registry` (a host[:port], docker.io for Docker Hub) from
    CONTAINER_ENGINE_REGISTRY_CREDENTIALS, or None: then the docker config's entry, if
    any, is used."""
    credentials = _registry_credentials()
    if credentials is None:
        return None
    named = credentials.get("registry")
    if named and _registry_host(named) != _registry_host(registry):
        return None
    return {"username": credentials["username"], "password": credentials["password"],
            "serveraddress": named or registry}


def image_auth(image: str) -> dict[str, str] | None:
    """`registry_auth` for the registry an image name (with or without its tag) is in."""
    import docker.auth

    last = image.rsplit("/", 1)[-1]
    repository = image.rpartition(":")[0] if ":" in last else image
    return registry_auth(docker.auth.resolve_repository_name(repository)[0])


def _secrets() -> list[str]:
    found = []
    git = os.environ.get(GIT_CREDENTIAL_ENV, "")
    for line in git.splitlines():
        key, sep, value = line.strip().partition("=")
        # A line that is no key=value may be a bare token.
        found.append(value if sep and key in _SECRET_KEYS else "" if sep else key)
    found.append(git.strip())
    try:
        registry = json.loads(os.environ.get(REGISTRY_CREDENTIALS_ENV) or "{}")
    except ValueError:
        registry = {}
    if isinstance(registry, dict):
        found += [v for k, v in registry.items()
                  if k in ("password", "auth", "identitytoken") and isinstance(v, str)]
    # Longest first: a secret containing another is scrubbed whole.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` without any URL's password and without the value of any credential above:
    what may reach a log line, an event or an error message."""
    text = without_credentials(text)
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text
