"""`badge`: "launch binder" links for a repository on a BinderHub, and whether the
image for a ref is already in the registry.

URLs follow BinderHub's scheme: `/v2/gh/ORG/REPO/REF` for GitHub, `/v2/gl/NAMESPACE/REF`
(the namespace URL-escaped) for gl:, `/v2/gist/USER/ID/REF` for gist:, `/v2/git/URL/REF`
(URL-escaped) for any other git repository, and `/v2/PROVIDER/SPEC/` for records (a DOI
for zenodo, figshare and dataverse, a resource id for hydroshare, the escaped dataset URL
for ckan), with `?urlpath=` for what to open. Image
names follow BinderHub's too — image_prefix + escaped build slug + ":" + commit — since
that is what BinderHub asks the builder to produce.
"""

from __future__ import annotations

import hashlib
import html
import re
import string
import urllib.parse
from dataclasses import dataclass

from ..errors import PangeoBinderError, SourceError
from ..spec import GitSource, RecordSource, Source, parse_source

_GITHUB_URL = re.compile(r"^https://github\.com/(?P<org>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")
_ZENODO_URL = re.compile(r"^https?://(?:sandbox\.)?zenodo\.org/records?/(?P<id>\d+)/?$")
_FIGSHARE_URL = re.compile(r"^https?://figshare\.com/(?:account/)?articles/"
                           r"(?:(?:code|dataset|software)/)?[^/]+/(?P<id>\d+)"
                           r"(?:/(?P<version>\d+))?/?$")
_PERSISTENT_ID = re.compile(r"[?&]persistentId=doi:(?P<doi>10\.[^&#\s]+)")
_HYDROSHARE_ID = re.compile(r"[0-9a-f]{32}")
_SLUG_SAFE = frozenset(string.ascii_letters + string.digits)


@dataclass(frozen=True)
class BinderRepo:
    provider: str  # "gh", "gl", "gist", "git", or a record provider ("zenodo", ...)
    spec: str  # ORG/REPO for gh, the escaped URL for git (no ref), a DOI for zenodo ...
    build_slug: str  # what BinderHub escapes into the image name
    url: str  # the git URL, for resolving refs; a record's spec
    record: bool = False  # a record's launch URL has no ref

    @classmethod
    def of(cls, source: Source) -> BinderRepo:
        if isinstance(source, RecordSource):
            return cls._of_record(source)
        if not isinstance(source, GitSource):
            raise SourceError("a badge needs a published repository: name it as "
                              "gh:org/repo or by its git URL")
        if source.display.startswith("gl:"):
            namespace = source.display[3:]
            return cls("gl", urllib.parse.quote(namespace, safe=""),
                       "-".join(p.replace("-", "_-") for p in namespace.split("/")), source.url)
        if source.display.startswith("gist:"):
            user_gist = source.display[5:]
            return cls("gist", user_gist, user_gist.split("/")[1], source.url)
        if match := _GITHUB_URL.match(source.url):
            org, repo = match["org"], match["repo"]
            return cls("gh", f"{org}/{repo}", f"{org}-{repo}", source.url)
        # A badge is published: it names the repository without any credentials.
        public = source.public_url
        return cls("git", urllib.parse.quote(public, safe=""), public, source.url)

    @classmethod
    def _of_record(cls, source: RecordSource) -> BinderRepo:
        """BinderHub's spec of a record: what its provider resolves (a DOI, mostly)."""
        spec, provider = source.spec, source.provider
        doi = spec if spec.startswith("10.") else None
        if provider == "zenodo" and not doi and (match := _ZENODO_URL.match(spec)):
            doi = f"10.5281/zenodo.{match['id']}"
        elif provider == "figshare" and not doi and (match := _FIGSHARE_URL.match(spec)):
            doi = f"10.6084/m9.figshare.{match['id']}.v{match['version'] or 1}"
        elif provider == "dataverse" and not doi and (match := _PERSISTENT_ID.search(spec)):
            doi = urllib.parse.unquote(match["doi"])
        if provider in ("zenodo", "figshare", "dataverse") and doi:
            return cls(provider, doi, f"{provider}-{doi}", spec, record=True)
        if provider == "hydroshare" and (match := _HYDROSHARE_ID.search(spec)):
            return cls(provider, match[0], f"hydroshare-{match[0]}", spec, record=True)
        if provider == "ckan":
            return cls(provider, urllib.parse.quote(spec, safe=""), f"ckan-{spec}", spec,
                       record=True)
        if provider == "swh":
            raise SourceError("BinderHub has no Software Heritage provider: a SWHID has "
                              "no badge")
        if provider is None:
            raise SourceError(f"which BinderHub provider serves {source.display} is not "
                              "known: spell it zenodo:DOI, figshare:DOI or dataverse:DOI")
        raise SourceError(f"a {provider} badge needs the record's DOI, not {source.display}")

    def launch_url(self, hub: str, ref: str, urlpath: str) -> str:
        if self.record:
            url = f"{hub.rstrip('/')}/v2/{self.provider}/{self.spec}/"
            return f"{url}?urlpath={urllib.parse.quote(urlpath, safe='/')}" if urlpath else url
        quoted = self.provider in ("git", "gl")
        ref_part = urllib.parse.quote(ref, safe="") if quoted else ref
        url = f"{hub.rstrip('/')}/v2/{self.provider}/{self.spec}/{ref_part}"
        return f"{url}?urlpath={urllib.parse.quote(urlpath, safe='/')}" if urlpath else url

    def image_name(self, image_prefix: str, commit: str) -> str:
        """The name BinderHub gives the image of `commit` (its _safe_build_slug)."""
        import escapism  # BinderHub's own escaping (repo2docker depends on it too)

        limit = 255 - len(image_prefix)
        digest = hashlib.sha256(self.build_slug.encode()).hexdigest()[:6]
        escaped = escapism.escape(self.build_slug, safe=_SLUG_SAFE, escape_char="-")
        slug = f"{escaped[:limit - 7]}-{digest}"
        return f"{image_prefix}{slug}:{commit}".replace("_", "-").lower()

    def built_image(self, image_prefix: str, ref: str) -> tuple[str, bool]:
        """The image BinderHub would launch for `ref` (resolved to its commit), and
        whether the registry already holds it."""
        # Here: a badge without --check asks neither git nor the registry (whose client,
        # docker-py, takes longer to load than the badges take to print).
        from ..builder.fetch import resolve_ref
        from ..builder.registry import image_in_registry

        if self.record:
            raise SourceError("--check needs a git source: BinderHub names a record's image "
                              "by the version it resolves, which only a build can tell")
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
        # A launch URL's query holds `&` (and a hub URL may hold anything): escaped as an
        # attribute value must be.
        "html": f'<a href="{html.escape(launch_url)}"><img src="{html.escape(logo)}" '
                'alt="Binder"></a>',
    }


@dataclass(frozen=True)
class Badge:
    """What `pangeo-binder badge` prints: the launch URL, and with --check the image
    BinderHub would launch and whether the registry holds it."""

    launch_url: str
    built: tuple[str, bool] | None = None


def badge_of(source: str, hub: str, ref: str | None = None, open_path: str | None = None,
             check: bool = False, image_prefix: str | None = None) -> Badge:
    """The badge of `source` on the BinderHub at `hub`, opening JupyterLab (at
    `open_path`); with `check`, also whether the image BinderHub would launch (named
    with the hub's `image_prefix`) is built."""
    if check and not image_prefix:
        raise PangeoBinderError("--check needs the hub's --image-prefix")
    parsed = parse_source(source, ref)
    repo = BinderRepo.of(parsed)
    wanted = getattr(parsed, "ref", None) or "HEAD"  # a record has none
    urlpath = f"lab/tree/{open_path.lstrip('/')}" if open_path else "lab"
    built = repo.built_image(image_prefix, wanted) if check and image_prefix else None
    return Badge(repo.launch_url(hub, wanted, urlpath), built)
