"""`badge`: "launch binder" links for a repository on a BinderHub, and whether the
image for a ref is already in the registry.

URLs follow BinderHub's scheme: `/v2/gh/ORG/REPO/REF` for GitHub, `/v2/git/URL/REF`
(URL-escaped) for any other git repository, with `?urlpath=` for what to open. Image
names follow BinderHub's too — image_prefix + escaped build slug + ":" + commit — since
that is what BinderHub asks the builder to produce.
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .errors import PangeoBinderError, SourceError
from .spec import GitSource, Source

_GITHUB_URL = re.compile(r"^https://github\.com/(?P<org>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")
_SLUG_SAFE = re.compile(r"[A-Za-z0-9]")
# Manifest types a registry may hold an image as (Docker v2 and OCI, single or list).
_MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


class RegistryError(PangeoBinderError):
    """The registry cannot be asked whether an image exists."""


@dataclass(frozen=True)
class BinderRepo:
    provider: str  # "gh" or "git"
    spec: str  # ORG/REPO for gh, the escaped URL for git (no ref)
    build_slug: str  # what BinderHub escapes into the image name
    url: str  # the git URL, for resolving refs

    @classmethod
    def of(cls, source: Source) -> BinderRepo:
        if not isinstance(source, GitSource):
            raise SourceError("a badge needs a published repository: name it as "
                              "gh:org/repo or by its git URL")
        if match := _GITHUB_URL.match(source.url):
            org, repo = match["org"], match["repo"]
            return cls("gh", f"{org}/{repo}", f"{org}-{repo}", source.url)
        return cls("git", urllib.parse.quote(source.url, safe=""), source.url, source.url)

    def launch_url(self, hub: str, ref: str, urlpath: str) -> str:
        ref_part = urllib.parse.quote(ref, safe="") if self.provider == "git" else ref
        url = f"{hub.rstrip('/')}/v2/{self.provider}/{self.spec}/{ref_part}"
        return f"{url}?urlpath={urllib.parse.quote(urlpath, safe='/')}" if urlpath else url

    def image_name(self, image_prefix: str, commit: str) -> str:
        """The name BinderHub gives the image of `commit` (its _safe_build_slug)."""
        limit = 255 - len(image_prefix)
        digest = hashlib.sha256(self.build_slug.encode()).hexdigest()[:6]
        escaped = "".join(ch if _SLUG_SAFE.match(ch) else
                          "".join(f"-{byte:02X}" for byte in ch.encode())
                          for ch in self.build_slug)
        slug = f"{escaped[:limit - 7]}-{digest}"
        return f"{image_prefix}{slug}:{commit}".replace("_", "-").lower()


def badges(launch_url: str, hub: str) -> dict[str, str]:
    """The badge in Markdown, reStructuredText and HTML."""
    logo = f"{hub.rstrip('/')}/badge_logo.svg"
    return {
        "markdown": f"[![Binder]({logo})]({launch_url})",
        "rst": f".. image:: {logo}\n   :target: {launch_url}\n   :alt: Binder",
        "html": f'<a href="{launch_url}"><img src="{logo}" alt="Binder"></a>',
    }


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
