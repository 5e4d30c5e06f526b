"""Asking a registry whether it holds an image (Docker Registry HTTP API v2).

Anonymous reads only, as BinderHub's own check does for public registries; a registry
on loopback is spoken to over plain HTTP, any other over HTTPS.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from .errors import PangeoBinderError

# Manifest types a registry may hold an image as (Docker v2 and OCI, single or list).
_MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


class RegistryError(PangeoBinderError):
    """The registry cannot be asked whether an image exists."""


def _registry_url(image: str) -> tuple[str, str, str]:
    """(registry base URL, repository, tag) of a fully named image."""
    name, _, tag = image.rpartition(":")
    host, _, repository = name.partition("/")
    if not repository or not ("." in host or ":" in host or host == "localhost"):
        raise RegistryError(f"{image} names no registry: give an image prefix that "
                            "starts with one (registry.example.org/binder/)")
    loopback = host.split(":")[0] in ("localhost", "127.0.0.1")
    return f"{'http' if loopback else 'https'}://{host}", repository, tag


def image_in_registry(image: str) -> bool:
    """Whether the registry holds `image` (anonymous read, as BinderHub's check)."""
    base, repository, tag = _registry_url(image)
    request = urllib.request.Request(f"{base}/v2/{repository}/manifests/{tag}",
                                     method="HEAD", headers={"Accept": _MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        if error.code == 401:
            raise RegistryError(f"{base} wants credentials to read {repository}") from None
        raise RegistryError(f"{base} answered {error.code} for {repository}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RegistryError(f"cannot reach the registry {base}: {reason}") from None
