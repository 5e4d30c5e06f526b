"""The Python project files repo2docker reads beyond requirements.txt, and uv's locks.

Each becomes requirements text that the resolver takes as it takes a requirements.txt
(pangeo_binder.builder.lock), so a project file gets the same sandbox, the same base or
standalone environment and the same hash-checked image install:

- Pipfile: its [packages] and [dev-packages] (repo2docker runs `pipenv install --dev`),
  resolved like requirements;
- Pipfile.lock, pylock.toml (PEP 751) and uv.lock: every locked package pinned exactly
  (`==`), and each file the resolution then chooses must be one the lock lists by hash
  (`check_locked_hashes`), so the image holds the files the repository locked. uv.lock
  is read by uv itself (`uv export`, in the sandbox: the lock is untrusted input).

Paths in these files are relative to the file's own directory (pipenv and uv run there);
they are rewritten relative to the repository root, where the resolver runs, and a path
out of the repository is refused.
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import BinderConfigError, LockError
from .pylock import _hashes, requirements_lock

PIPFILE = "Pipfile"
PIPFILE_LOCK = "Pipfile.lock"
PYLOCK = "pylock.toml"
UV_LOCK = "uv.lock"
LOCKS = (PIPFILE_LOCK, PYLOCK, UV_LOCK)  # pinned exactly and hash-checked
PYPI = re.compile(r"^https://pypi\.(org|python\.org)/simple/?$")
_LOCAL = re.compile(r"^(-e\s+)?(\.[^\s\[;]*)(.*)$")


def parse_toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BinderConfigError(f"{name} is not valid TOML: {exc}") from None


def parse_json(text: str, name: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BinderConfigError(f"{name} is not valid JSON: line {exc.lineno}: "
                                f"{exc.msg}") from None
    if not isinstance(data, dict):
        raise BinderConfigError(f"{name} is not a Pipfile.lock (no JSON object)")
    return data


def _inside(directory: str, path: str, name: str) -> str:
    """`path` (relative to `directory`) as pip writes a local requirement relative to the
    repository root: `.` or `./sub`."""
    joined = posixpath.normpath(posixpath.join(directory, path))
    if path.startswith("/") or joined == ".." or joined.startswith("../"):
        raise BinderConfigError(f"{name} installs {path!r}, outside the repository; only "
                                "its own directories can be installed")
    return "." if joined == "." else f"./{joined}"


def _table(data: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise BinderConfigError(f"{name}: {key} is not a table of packages")
    return value


def _extras(extras: Any) -> str:
    return f"[{','.join(extras)}]" if extras else ""


def _marker(entry: Mapping[str, Any]) -> str:
    return f" ; {entry['markers']}" if entry.get("markers") else ""


def _pipenv_entry(package: str, entry: Any, name: str, directory: str) -> str:
    """One Pipfile or Pipfile.lock entry as a requirement line."""
    if isinstance(entry, str):
        entry = {"version": entry}
    if not isinstance(entry, dict):
        raise BinderConfigError(f"{name}: {package!r} is neither a version nor a table")
    extras = _extras(entry.get("extras"))
    if "path" in entry:
        local = _inside(directory, str(entry["path"]), name)
        return f"{'-e ' if entry.get('editable') else ''}{local}{extras}"
    if "git" in entry:
        url = str(entry["git"]).removeprefix("git+")
        ref = f"@{entry['ref']}" if entry.get("ref") else ""
        sub = f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else ""
        return f"{package}{extras} @ git+{url}{ref}{sub}{_marker(entry)}"
    if "file" in entry:
        return f"{package}{extras} @ {entry['file']}{_marker(entry)}"
    version = str(entry.get("version", "*")).strip()
    if version in ("*", ""):
        version = ""
    elif version[0].isdigit():  # pipenv reads a bare version as ==
        version = f"=={version}"
    return f"{package}{extras}{version}{_marker(entry)}"


def pipfile_requirements(text: str, name: str, directory: str) -> str:
    """A Pipfile's packages and dev-packages, as requirements (resolved, not locked); a
    source other than PyPI becomes an extra index, as pipenv searches it too."""
    data = parse_toml(text, name)
    lines = [f"--extra-index-url {source['url']}" for source in data.get("source") or []
             if isinstance(source, dict) and source.get("url")
             and not PYPI.match(str(source["url"]))]
    for section in ("packages", "dev-packages"):
        for package, entry in _table(data, section, name).items():
            lines.append(_pipenv_entry(package, entry, name, directory))
    return "".join(f"{line}\n" for line in lines)


def pipfile_lock_requirements(text: str, name: str, directory: str) -> str:
    """A Pipfile.lock's default and develop packages, each pinned with its hashes."""
    data = parse_json(text, name)
    lines = []
    for section in ("default", "develop"):
        for package, entry in _table(data, section, name).items():
            if isinstance(entry, dict) and "version" in entry \
                    and not str(entry["version"]).startswith("=="):
                raise BinderConfigError(f"{name}: {package} is locked at "
                                        f"{entry['version']!r}, not an exact version")
            line = _pipenv_entry(package, entry, name, directory)
            hashes = [f"--hash={h}" for h in entry.get("hashes") or []]
            lines.append(" \\\n    ".join([line, *hashes]))
    return "".join(f"{line}\n" for line in lines)


def pylock_requirements(text: str, name: str, directory: str,
                        environment: Mapping[str, str]) -> str:
    """A committed pylock.toml's packages for the image's platform, each pinned with its
    files' hashes."""
    parse_toml(text, name)
    return rebase_local(requirements_lock(text, environment), directory, name)


def rebase_local(text: str, directory: str, name: str) -> str:
    """The local lines of requirements written in `directory`, relative to the root."""
    lines = []
    for line in text.splitlines():
        match = _LOCAL.match(line.strip())
        if match:
            line = f"{match[1] or ''}{_inside(directory, match[2], name)}{match[3]}"
        lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def python_requires(text: str, filename: str) -> str | None:
    """The Python a project file asks for: a PEP 440 specifier, or None."""
    if filename == PIPFILE_LOCK:
        meta = json.loads(text).get("_meta")
        requires = meta.get("requires") if isinstance(meta, dict) else None
    elif filename == PIPFILE:
        requires = tomllib.loads(text).get("requires")
    else:  # pylock.toml and uv.lock
        spec = tomllib.loads(text).get("requires-python")
        return spec if isinstance(spec, str) else None
    if not isinstance(requires, dict):
        return None
    version = requires.get("python_full_version") or requires.get("python_version")
    match = re.match(r"\d+\.\d+", str(version or ""))
    return f"=={match[0]}.*" if match else None


def split_hashes(text: str) -> tuple[str, dict[str, set[str]]]:
    """Requirements without their `--hash` options, and each package's locked hashes
    (canonical name -> {"--hash=sha256:..."})."""
    lines, hashes = [], {}
    for logical in re.sub(r"\\\n", " ", text).splitlines():
        head, *options = logical.split(" --hash=")
        head = head.strip()
        if not head:
            continue
        lines.append(head)
        if options:
            try:
                package = canonicalize_name(Requirement(head).name)
            except InvalidRequirement:
                continue
            hashes.setdefault(package, set()).update(
                f"--hash={option.split()[0]}" for option in options)
    return "".join(f"{line}\n" for line in lines), hashes


def check_locked_hashes(resolution: str, locked: Mapping[str, set[str]], name: str) -> None:
    """Every file the resolution chose for a package the lock hashes must be one of the
    lock's files: the image then installs what the repository locked, not merely the
    same version numbers."""
    for package in tomllib.loads(resolution).get("packages", []):
        wanted = locked.get(canonicalize_name(package["name"]))
        if not wanted:
            continue
        chosen = set(_hashes(package.get("sdist"), package.get("archive"),
                             *(package.get("wheels") or [])))
        if chosen - wanted:
            raise LockError(f"{name} locks {package['name']} {package.get('version', '')} "
                            "but the index offers a file of it whose hash the lock does not "
                            "list; lock it again")


UV_EXPORT = ["uv", "export", "--frozen", "--format", "requirements-txt", "--no-header",
             "--no-annotate", "--no-progress", "--quiet"]
