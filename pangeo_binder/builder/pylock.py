"""A resolution as uv writes it in PEP 751's pylock.toml: every chosen file, by URL and hash.

A repository's requirements are resolved into this document, and its image installs
exactly the files it names. The build then never asks a package index again: an
installer whose view of the index is older than the resolver's (another cache, another
mirror, an index front end that has not seen the newest upload) cannot fail a lock that
resolved a second earlier. The requirements-format lock that the rest of pangeo-binder
reads (pins, notices, the smoke test's comparison) is made from the same document, so
the two cannot disagree.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from packaging.markers import Marker

# uv takes such a document only by the name pylock.toml or pylock.NAME.toml.
REPOSITORY_FILE = "pylock.repository.toml"  # a repository's packages on the base
ENVIRONMENT_FILE = "pylock.environment.toml"  # a standalone environment's


def _packages(document: str) -> list[dict[str, Any]]:
    return tomllib.loads(document).get("packages", [])


def _applies(package: Mapping[str, Any], environment: Mapping[str, str]) -> bool:
    marker = package.get("marker")
    return marker is None or Marker(marker).evaluate(dict(environment))


def _hashes(*files: Mapping[str, Any] | None) -> list[str]:
    return sorted({f"--hash={algorithm}:{value}" for file in files if file
                   for algorithm, value in (file.get("hashes") or {}).items()})


def _line(package: Mapping[str, Any]) -> str:
    name = package["name"]
    if directory := package.get("directory"):
        path = directory["path"]
        local = "." if path in (".", "") else f"./{path.removeprefix('./')}"
        return f"-e {local}" if directory.get("editable") else local
    if vcs := package.get("vcs"):
        return f"{name} @ {vcs['type']}+{vcs['url']}@{vcs['commit-id']}"
    if archive := package.get("archive"):
        head, hashes = f"{name} @ {archive['url']}", _hashes(archive)
    else:
        head = f"{name}=={package['version']}"
        hashes = _hashes(package.get("sdist"), *(package.get("wheels") or []))
    return " \\\n    ".join([head, *hashes])


def requirements_lock(document: str, environment: Mapping[str, str]) -> str:
    """The resolution as a hash-checked requirements lock for the target `environment`
    (PEP 508 marker values): one entry per package whose marker holds there."""
    return "".join(f"{_line(package)}\n" for package in _packages(document)
                   if _applies(package, environment))


def installable(document: str) -> str:
    """The document without the repository's own packages and git checkouts: those are
    installed after the repository's copy, without dependencies (they are in here)."""
    import tomlkit

    parsed = tomlkit.parse(document)
    packages = parsed.get("packages")
    if packages is not None:
        for index in reversed(range(len(packages))):
            if "directory" in packages[index] or "vcs" in packages[index]:
                del packages[index]
    return tomlkit.dumps(parsed)

