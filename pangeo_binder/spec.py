"""Source specs: what the user named (a directory, a git URL, or gh:org/repo[@ref])."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError

_GH = re.compile(
    r"^gh:(?P<org>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?"
    r"(?:@(?P<ref>[^\s@]+))?$"
)
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


Source = LocalSource | GitSource


def parse_source(text: str, ref: str | None = None) -> Source:
    """Parse what the user typed; `ref` is the --ref option."""
    text = text.strip()
    if not text:
        raise SourceError("no source given: name a directory, a git URL or gh:org/repo")
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


def looks_like_source(text: str) -> bool:
    """Whether `text` names a source (to build) rather than an image reference."""
    text = text.strip()
    return (text.startswith("gh:") or "://" in text or bool(_SCP_LIKE.match(text))
            or Path(text).expanduser().is_dir())


def slug(source: Source) -> str:
    """A short, Docker-safe name for the source, used in image names."""
    if isinstance(source, LocalSource):
        raw = source.path.name
    elif source.display.startswith("gh:"):
        raw = source.display[3:].replace("/", "-")
    else:
        path = re.sub(r"^[a-z]+://[^/]*", "", source.url)
        path = path.split(":", 1)[-1] if _SCP_LIKE.match(source.url) else path
        parts = [p for p in path.removesuffix("/").removesuffix(".git").split("/") if p]
        raw = "-".join(parts[-2:])
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:64].strip("-")
    return name or "repo"
