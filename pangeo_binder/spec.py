"""Source specs: what the user named (a directory, a git URL, gh:org/repo[@ref],
gl:group/project[@ref], gist:user/id[@ref], or a published record: a DOI, a record URL,
a SWHID or BinderHub's provider spelling such as zenodo:10.5281/zenodo.N)."""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError

_GH = re.compile(
    r"^gh:(?P<org>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?"
    r"(?:@(?P<ref>[^\s@]+))?$"
)
_GL = re.compile(
    r"^gl:(?P<path>[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+)"
    r"(?:@(?P<ref>[^\s@]+))?$"
)
_GIST = re.compile(
    r"^gist:(?P<user>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<id>[0-9A-Za-z]+)"
    r"(?:@(?P<ref>[^\s@]+))?$"
)
# BinderHub's GitLabRepoProvider.hostname: the GitLab that gl: names. A host name as
# BinderHub takes it (https), or a base URL for a server without TLS.
GITLAB_HOSTNAME_VARIABLE = "PANGEO_BINDER_GITLAB_HOSTNAME"
DEFAULT_GITLAB_HOSTNAME = "gitlab.com"
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)\S+$")
GIT_SCHEMES = ("https", "http", "file", "ssh", "git")
_REF = re.compile(r"^[^\s~^:?*\[\\]+$")
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^/\s@]+)@")


def _drop_secret(match: re.Match) -> str:
    scheme, userinfo = match[1], match[2]
    # ssh://git@host names an account, not a secret; over http(s) a bare user name is
    # often a token (https://TOKEN@github.com/...).
    if ":" not in userinfo and scheme.lower() in ("ssh", "git+ssh"):
        return match[0]
    return f"{scheme}://"


def without_credentials(text: str) -> str:
    """`text` with the password or token of every URL in it removed: what may reach an
    image label, an event, a log or an error message."""
    return _USERINFO.sub(_drop_secret, text)


@dataclass(frozen=True)
class LocalSource:
    """A directory on this machine, used as it is (uncommitted changes included)."""

    path: Path

    @property
    def display(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class GitSource:
    """A git repository, fetched at exactly one commit; `ref` None means the remote HEAD."""

    url: str  # as given, credentials included: only git ever sees it
    ref: str | None
    display: str  # without credentials

    @property
    def public_url(self) -> str:
        return without_credentials(self.url)


@dataclass(frozen=True)
class RecordSource:
    """A published record (Zenodo, Figshare, Dataverse, Hydroshare, CKAN) or a Software
    Heritage object, fetched by repo2docker's content provider for it
    (`pangeo_binder.builder.records`). A record has no git ref: its DOI, URL or SWHID names
    the version."""

    provider: str | None  # one of RECORD_PROVIDERS; None: whichever the DOI resolves to
    spec: str  # what the provider is given: a DOI (10.x/...), a record URL or a SWHID
    display: str


Source = LocalSource | GitSource | RecordSource

# BinderHub's provider prefixes for records (its repoproviders), and "swh" for SWHIDs.
RECORD_PROVIDERS = ("zenodo", "figshare", "hydroshare", "dataverse", "ckan", "swh")
_DOI = re.compile(r"^(?:doi:\s*|(?:https?://)?(?:dx\.)?doi\.org/)?(?P<doi>10\.\d{4,9}/\S+)$",
                  re.IGNORECASE)
_DOI_PROVIDERS = (("10.5281/zenodo.", "zenodo"), ("10.6084/m9.figshare.", "figshare"),
                  ("10.4211/hs.", "hydroshare"), ("10.7910/dvn/", "dataverse"))
_SWHID = re.compile(r"^swh:1:(?P<type>ori|cnt|rev|dir|snp|rel):[0-9a-f]{40}(?:;\S*)?$")
_HYDROSHARE_ID = re.compile(r"(?<![0-9a-f])(?P<id>[0-9a-f]{32})(?![0-9a-f])")
_RECORD_URLS = (
    (re.compile(r"^https?://(?:sandbox\.)?zenodo\.org/records?/\d+/?$"), "zenodo"),
    (re.compile(r"^https?://figshare\.com/(?:account/)?articles/\S+/\d+(?:/\d+)?/?$"),
     "figshare"),
    (re.compile(r"^https?://(?:www\.)?hydroshare\.org/resource/[0-9a-f]{32}/?$"), "hydroshare"),
    (re.compile(r"^https?://[^/]+/(?:dataset\.xhtml|citation|file\.xhtml)\?(?:\S*&)?"
                r"persistentId=\S+$"), "dataverse"),
    (re.compile(r"^https?://[^/]+(?:/[^?#]*)?/dataset/[^/?#]+(?:/\S*)?$"), "ckan"),
)


def parse_source(text: str, ref: str | None = None) -> Source:
    """Parse what the user typed; `ref` is the --ref option."""
    text = text.strip()
    if not text:
        raise SourceError("no source given: name a directory, a git URL, gh:org/repo or a DOI")
    if ref is not None and not _REF.match(ref):
        raise SourceError(f"invalid git ref {ref!r}")

    if text.startswith("gh:"):
        match = _GH.match(text)
        if not match:
            raise SourceError(f"invalid GitHub shorthand {text!r}: expected gh:org/repo[@ref]")
        if match["ref"] and ref:
            raise SourceError(f"{text} already names a ref; drop --ref or the @ref")
        org, repo = match["org"], match["repo"]
        return GitSource(
            url=f"https://github.com/{org}/{repo}",
            ref=match["ref"] or ref,
            display=f"gh:{org}/{repo}",
        )

    if text.startswith(("gl:", "gist:")):
        return _git_shorthand(text, ref)
    if (record := _record(text)) is not None:
        if ref is not None:
            raise SourceError(f"{record.display} is a published record, which has no git ref: "
                              "its DOI, URL or SWHID names the version; drop --ref")
        return record

    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in GIT_SCHEMES:
            raise SourceError(
                f"unsupported URL scheme {scheme!r} in {text!r}: "
                f"use one of {', '.join(GIT_SCHEMES)}"
            )
        return GitSource(url=text, ref=ref, display=without_credentials(text))
    if _SCP_LIKE.match(text):
        return GitSource(url=text, ref=ref, display=text)

    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(
            f"no such directory: {text} (expected a directory, a git URL or gh:org/repo)"
        )
    if not path.is_dir():
        raise SourceError(f"{text} is not a directory")
    path = path.resolve()
    if ref is not None:
        # A ref of a local repository means "that commit", not the working tree.
        return GitSource(url=path.as_uri(), ref=ref, display=str(path))
    return LocalSource(path=path)


def gitlab_base_url() -> str:
    """Where gl: shorthands point: PANGEO_BINDER_GITLAB_HOSTNAME (a self-hosted GitLab),
    by default gitlab.com, over https unless the setting is a URL saying otherwise."""
    host = (os.environ.get(GITLAB_HOSTNAME_VARIABLE) or DEFAULT_GITLAB_HOSTNAME).strip()
    return host.rstrip("/") if "://" in host else f"https://{host.strip('/')}"


def _git_shorthand(text: str, ref: str | None) -> GitSource:
    """gl:group[/subgroup]/project[@ref] and gist:user/id[@ref], as BinderHub's GitLab and
    Gist providers name their repositories."""
    if text.startswith("gl:"):
        match = _GL.match(text)
        path = match["path"].removesuffix(".git") if match else ""
        if not match or any(part in (".", "..", "") for part in path.split("/")):
            raise SourceError(f"invalid GitLab shorthand {text!r}: expected "
                              "gl:group[/subgroup]/project[@ref]")
        url, display = f"{gitlab_base_url()}/{path}.git", f"gl:{path}"
    else:
        match = _GIST.match(text)
        if not match:
            raise SourceError(f"invalid gist shorthand {text!r}: expected gist:user/id[@ref]")
        url = f"https://gist.github.com/{match['user']}/{match['id']}.git"
        display = f"gist:{match['user']}/{match['id']}"
    if match["ref"] and ref:
        raise SourceError(f"{text} already names a ref; drop --ref or the @ref")
    if match["ref"] and not _REF.match(match["ref"]):
        raise SourceError(f"invalid git ref {match['ref']!r}")
    return GitSource(url=url, ref=match["ref"] or ref, display=display)


def _on_a_git_host(url: str) -> bool:
    """A URL of a git forge, whose paths may well hold a /dataset/ (never a CKAN's)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    gitlab = (urllib.parse.urlsplit(gitlab_base_url()).hostname or "").lower()
    return host in ("github.com", "gist.github.com", "gitlab.com", "bitbucket.org", gitlab)


def _doi_provider(doi: str) -> str | None:
    return next((name for prefix, name in _DOI_PROVIDERS if doi.lower().startswith(prefix)),
                None)


# Other instances of these services (an institution's Dataverse, a Zenodo of its own):
# PROVIDER=URL pairs, comma-separated.
CONTENT_HOSTS_VARIABLE = "PANGEO_BINDER_CONTENT_HOSTS"
CONFIGURABLE = ("zenodo", "figshare", "dataverse", "swh")


def content_hosts() -> tuple[tuple[str, str], ...]:
    """(provider, base URL) pairs of PANGEO_BINDER_CONTENT_HOSTS."""
    hosts = []
    for item in filter(None, (p.strip() for p in
                              os.environ.get(CONTENT_HOSTS_VARIABLE, "").split(","))):
        name, _, base = item.partition("=")
        name, base = name.strip().lower(), base.strip().rstrip("/")
        if name not in CONFIGURABLE or not base.startswith(("https://", "http://")):
            raise SourceError(f"{CONTENT_HOSTS_VARIABLE}: {item!r} is not PROVIDER=URL with "
                              f"PROVIDER one of {', '.join(CONFIGURABLE)}")
        hosts.append((name, base))
    return tuple(hosts)


def _configured_record_url(url: str) -> str | None:
    """The provider of a URL under a content host of PANGEO_BINDER_CONTENT_HOSTS."""
    return next((name for name, base in content_hosts() if url.startswith(base + "/")), None)


def _record(text: str) -> RecordSource | None:
    """`text` as a published record, or None when it names none (a git URL, a path).
    Told from the spelling alone, never by asking a provider or the network: a git source
    must build where no record service can be reached."""
    prefix, _, rest = text.partition(":")
    if _SWHID.match(text):
        if _SWHID.match(text)["type"] not in ("dir", "rev"):  # type: ignore[index]
            raise SourceError(f"{text}: only directory and revision SWHIDs "
                              "(swh:1:dir:..., swh:1:rev:...) can be built")
        return RecordSource("swh", text, text)
    if prefix in RECORD_PROVIDERS and prefix != "swh" and not rest.startswith("//"):
        return _provider_spelling(prefix, rest.strip(), text)
    if match := _DOI.match(text):
        doi = match["doi"]
        return RecordSource(_doi_provider(doi), doi, doi)
    if text.lower().startswith(("https://", "http://")) and not text.endswith(".git"):
        public = without_credentials(text)
        for pattern, name in _RECORD_URLS:
            if pattern.match(text) and not (name == "ckan" and _on_a_git_host(text)):
                return RecordSource(name, text, public)
        if name := _configured_record_url(text):
            return RecordSource(name, text, public)
    return None


def _provider_spelling(provider: str, spec: str, text: str) -> RecordSource:
    """BinderHub's `PROVIDER:SPEC` (its /v2/PROVIDER/SPEC launch path): a DOI for Zenodo,
    Figshare and Dataverse, a resource id or URL for Hydroshare, a dataset URL for CKAN."""
    if provider == "hydroshare":
        match = _HYDROSHARE_ID.search(spec)
        if not match:
            raise SourceError(f"invalid Hydroshare spelling {text!r}: expected "
                              "hydroshare:RESOURCE_ID (32 hexadecimal digits) or its URL")
        if "://" in spec:
            return RecordSource(provider, spec, text)
        return RecordSource(provider, f"https://www.hydroshare.org/resource/{match['id']}",
                            text)
    if provider == "ckan":
        if not spec.lower().startswith(("https://", "http://")) or "/dataset/" not in spec:
            raise SourceError(f"invalid CKAN spelling {text!r}: expected "
                              "ckan:https://HOST/dataset/NAME")
        return RecordSource(provider, spec, without_credentials(text))
    if match := _DOI.match(spec):
        return RecordSource(provider, match["doi"], f"{provider}:{match['doi']}")
    if spec.lower().startswith(("https://", "http://")):
        return RecordSource(provider, spec, without_credentials(text))
    raise SourceError(f"invalid {provider} spelling {text!r}: expected {provider}:DOI "
                      f"(10.NNNN/...) or a record URL")


def looks_like_source(text: str) -> bool:
    """Whether `text` names a source (to build) rather than an image reference."""
    text = text.strip()
    if text.startswith(("gh:", "gl:", "gist:")) or "://" in text or _SCP_LIKE.match(text):
        return True
    try:
        if _record(text) is not None:
            return True
    except SourceError:
        return False  # e.g. an image named ckan:latest
    return Path(text).expanduser().is_dir()


def slug(source: Source) -> str:
    """A short, Docker-safe name for the source, used in image names."""
    if isinstance(source, LocalSource):
        raw = source.path.name
    elif isinstance(source, RecordSource):
        raw = _record_name(source)
    elif source.display.startswith(("gh:", "gl:", "gist:")):
        raw = source.display.split(":", 1)[1].replace("/", "-")
    else:
        path = re.sub(r"^[a-z]+://[^/]*", "", source.url)
        path = path.split(":", 1)[-1] if _SCP_LIKE.match(source.url) else path
        parts = [p for p in path.removesuffix("/").removesuffix(".git").split("/") if p]
        raw = "-".join(parts[-2:])
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:64].strip("-")
    return name or "repo"


def _record_name(source: RecordSource) -> str:
    """What names a record: zenodo.3242074, figshare 9784088/2, a dataset, a hash."""
    provider = source.provider or "record"
    spec = source.spec
    if spec.startswith(("10.", "swh:")):
        tail = spec.rsplit("/", 1)[-1]
    else:
        parts = urllib.parse.urlsplit(spec)
        persistent = urllib.parse.parse_qs(parts.query).get("persistentId")
        segments = [s for s in parts.path.split("/") if s]
        tail = persistent[0].rsplit("/", 1)[-1] if persistent else "-".join(segments[-2:])
    return tail if provider in tail.lower() else f"{provider}-{tail}"
