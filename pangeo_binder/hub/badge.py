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
import urllib.parse
from dataclasses import dataclass

from ..build.fetch import resolve_ref
from ..build.registry import image_in_registry
from ..errors import SourceError
from ..spec import GitSource, Source

_GITHUB_URL = re.compile(r"^https://github\.com/(?P<org>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")
_SLUG_SAFE = re.compile(r"[A-Za-z0-9]")


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
        # A badge is published: it names the repository without any credentials.
        public = source.public_url
        return cls("git", urllib.parse.quote(public, safe=""), public, source.url)

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

    def built_image(self, image_prefix: str, ref: str) -> tuple[str, bool]:
        """The image BinderHub would launch for `ref` (resolved to its commit), and
        whether the registry already holds it."""
        commit = resolve_ref(self.url, ref)
        if commit is None:
            raise SourceError(f"give the full commit sha, not {ref!r}")
        image = self.image_name(image_prefix, commit)
        return image, image_in_registry(image)


def badges(launch_url: str, hub: str) -> dict[str, str]:
    """The badge in Markdown, reStructuredText and HTML."""
    logo = f"{hub.rstrip('/')}/badge_logo.svg"
    return {
        "markdown": f"[![Binder]({logo})]({launch_url})",
        "rst": f".. image:: {logo}\n   :target: {launch_url}\n   :alt: Binder",
        "html": f'<a href="{launch_url}"><img src="{logo}" alt="Binder"></a>',
    }
