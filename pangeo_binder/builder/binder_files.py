"""A checkout's binder files, and the `BinderConfig` read from them.

repo2docker's contract: the files live in `binder/`, else `.binder/`, else the root
(`binder_files`). Which environment file decides the image, and how it is read, is its
kind's (pangeo_binder.builder.kinds, whose `detect` fills the `BinderConfig`); what the
kinds share is here: reading a file safely, apt.txt, runtime.txt, requirement lines, the
Python a project asks for. Everything that decides the image is validated before any
build starts, so a bad file fails with the file and line named.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..errors import BinderConfigError
from ..settings import DEBIAN_PYTHONS
from .fetch import Checkout

BINDER_DIRS = ("binder", ".binder")
# Debian policy 5.6.1: lower-case letters, digits, '+', '-' and '.'; at least two
# characters, starting with a letter or digit.
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_RUNTIME = re.compile(r"^python-(\d+(?:\.\d+)?)(?:\.\d+)?$")
# Requirement lines that install from a local path. The repository's own directories
# (`.`, `-e .`, `./pkg`, relative to its root, as pip and repo2docker read them) are
# installed after the repository is copied in; any other path (`..`, `/opt/x`,
# `file:`, "pkg @ file:///...") would reach outside the repository and is refused.
_LOCAL_REQUIREMENT = re.compile(r"^(-e|--editable)?\s*(\.{1,2}(/|$)|/|file:)|@\s*file:")
_REPOSITORY_REQUIREMENT = re.compile(
    r"^(?:(?:-e|--editable)\s+)?(\.(?:/[^\s;\[]*)?)(?:\[[^\]]*\])?$")
# Binder files are small text; a shipped lock may be large. Anything bigger is refused
# before it is read.
BINDER_FILE_LIMIT = 1 << 20
LOCK_FILE_LIMIT = 64 << 20
# Repository files larger than this are not copied into the resolver's sandbox.
SANDBOX_FILE_LIMIT = 32 << 20


@dataclass(frozen=True)
class BinderConfig:
    """What a repository's binder files ask for. The environment's fields (requirements,
    lock_file, conda_environment, ...) are filled by the one kind that read them
    (`kind`, a name of pangeo_binder.builder.kinds.KINDS)."""

    binder_dir: str  # "binder", ".binder" or "" for the root
    requirements: str | None = None  # repo-relative path
    apt_packages: tuple[str, ...] = ()
    post_build: str | None = None
    start: str | None = None
    python_version: str | None = None  # from runtime.txt, e.g. "3.11"
    # repo2docker's rule: a root setup.py (or a pyproject.toml that declares a package)
    # is installed after the requirements when there is no binder directory.
    install_repository: bool = False
    lock_file: str | None = None  # a shipped pangeo-binder lock, used as is
    dockerfile: str | None = None  # a repo Dockerfile bypasses all of the above
    # A conda environment (environment.yml and/or a shipped conda-lock.yml) replaces the
    # pip environment: requirements, runtime.txt and a pangeo-binder lock do not apply.
    conda_environment: str | None = None
    conda_lock: str | None = None
    # A Pipfile, Pipfile.lock, pylock.toml or uv.lock: the packages, as that file says
    # (pangeo_binder.builder.python_projects); requirements.txt then does not apply.
    python_project: str | None = None
    python_from: str | None = None  # the file that chose `python_version`
    # .dockerignore and .containerignore patterns: files kept out of the image's copy
    ignore_patterns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # which binder file was used where several could be
    kind: str = ""  # the kind whose files these are

    @property
    def conda(self) -> bool:
        return bool(self.conda_environment or self.conda_lock)

    def path(self, name: str) -> str:
        return f"{self.binder_dir}/{name}" if self.binder_dir else name


def _regular_file(checkout: Checkout, name: str) -> Path:
    """The real path of `name` if it is a regular file inside the checkout. A binder
    file that is a link out of the repository (to /etc/passwd, /proc/self/environ, ...)
    or a device is refused by name: its contents must never reach a message or a log."""
    root = checkout.path.resolve()
    path = (checkout.path / name).resolve()
    if not path.is_relative_to(root):
        raise BinderConfigError(f"{name} is a link to outside the repository; binder files "
                                "must be regular files in the repository")
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BinderConfigError(f"cannot read {name}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise BinderConfigError(f"{name} is not a regular file")
    return path


def read_text(checkout: Checkout, name: str, limit: int = BINDER_FILE_LIMIT) -> str:
    """A binder file's text, read only if it is a regular file inside the checkout and
    no larger than `limit`."""
    path = _regular_file(checkout, name)
    if path.stat().st_size > limit:
        raise BinderConfigError(f"{name} is larger than {limit >> 20} MiB")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BinderConfigError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise BinderConfigError(f"cannot read {name}: {exc.strerror}") from None


def repository_files(checkout: Checkout) -> dict[str, bytes]:
    """The repository's regular files (links that stay inside it, as their targets' bytes)
    up to SANDBOX_FILE_LIMIT each: what a sandbox gets to resolve requirements with."""
    root = checkout.path.resolve()
    files = {}
    for name in checkout.files:
        path = (checkout.path / name).resolve()
        if not path.is_relative_to(root):
            continue
        try:
            info = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size <= SANDBOX_FILE_LIMIT:
            files[name] = path.read_bytes()
    return files


def parse_apt_txt(text: str, name: str = "apt.txt") -> tuple[str, ...]:
    """Debian package names, one per line; comments and blank lines allowed."""
    packages = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _DEBIAN_PACKAGE.match(line):
            raise BinderConfigError(
                f"{name} line {number}: {line!r} is not a Debian package name "
                "(one name per line: lower-case letters, digits, '+', '-', '.')"
            )
        packages.append(line)
    return tuple(dict.fromkeys(packages))


# The Pythons a repository may ask for: Debian's (settings.DEBIAN_PYTHONS) and, for the
# others, uv's managed Python (pangeo_binder.builder.pythons).
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14", "3.15")


def python_sources() -> str:
    """The Pythons a repository may ask for, each with where it comes from."""
    parts, seen = [], set()
    for suite, versions in DEBIAN_PYTHONS.items():
        new = [version for version in versions
               if version in PYTHON_VERSIONS and version not in seen]
        seen.update(new)
        if new:
            parts.append(f"{' and '.join(new)} (Debian {suite})")
    managed = [version for version in PYTHON_VERSIONS if version not in seen]
    if managed:
        parts.append(f"{' and '.join(managed)} (uv's managed Python, downloaded in the build)")
    return ", ".join(parts)


def parse_runtime_txt(text: str, base_python: str, name: str = "runtime.txt",
                      any_python: bool = False) -> str:
    """The "X.Y" of `python-X.Y[.Z]`; `python-3`, any Python 3, is the base's, as
    repo2docker reads it as its default Python. With `any_python` (--relax, which drops
    the pin), a Python 3 no source has is taken too."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    runtime = lines[0] if lines else ""
    match = _RUNTIME.match(runtime)
    if match and match[1].split(".")[0] == "2":
        raise BinderConfigError(f"{name} asks for {runtime}, which pangeo-binder does not "
                                "support (its images run Python 3)")
    if not match:
        raise BinderConfigError(
            f"{name}: unsupported runtime {runtime!r}; expected python-3 or python-X.Y "
            f"(the Pangeo base runs python-{base_python})"
        )
    if match[1] == "3":
        return base_python
    if match[1] not in PYTHON_VERSIONS and not any_python:
        raise BinderConfigError(
            f"{name} asks for python-{match[1]}, which no source has; the Pythons to be had "
            f"are {python_sources()}; the Pangeo base runs python-{base_python}")
    return match[1]


def check_requirements_text(text: str, name: str, files: set[str]) -> bool:
    """Refuse local paths outside the repository; return whether the requirements
    install one of its own directories."""
    local = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        match = _REPOSITORY_REQUIREMENT.match(line)
        if match and ".." not in match[1].split("/"):
            directory = match[1].removeprefix(".").strip("/")
            prefix = f"{directory}/" if directory else ""
            if not any(f"{prefix}{marker}" in files for marker in _PACKAGE_MARKERS):
                raise BinderConfigError(
                    f"{name} line {number}: {line!r} names no Python package (no "
                    f"setup.py or pyproject.toml in {directory or 'the repository root'})")
            local = True
        elif _LOCAL_REQUIREMENT.search(line):
            raise BinderConfigError(
                f"{name} line {number}: {line!r} installs from outside the repository; "
                "only its own directories (., ./pkg) can be installed"
            )
    return local


_PACKAGE_MARKERS = ("setup.py", "pyproject.toml")


def declares_package(checkout: Checkout, files: set[str]) -> bool:
    """Whether the repository root is a Python package to install: a setup.py, or, as
    repo2docker decides, a pyproject.toml with both a [project] and a [build-system]
    table (many hold only tool settings, and a [project] without a build system is an
    application's, as `uv init` writes one)."""
    if "setup.py" in files:
        return True
    if "pyproject.toml" not in files:
        return False
    text = read_text(checkout, "pyproject.toml")
    return all(re.search(rf"^\s*\[{table}\]", text, re.M)
               for table in ("project", "build-system"))


IGNORE_FILES = (".dockerignore", ".containerignore")


def ignored_notice(used: str, ignored: list[str], why: str = "repo2docker's order") -> str:
    verb = "is" if len(ignored) == 1 else "are"
    return f"{used} is used; {', '.join(ignored)} {verb} ignored ({why})"


def python_for(spec: str | None, spec_from: str, runtime: str | None,
               runtime_from: str | None, base_python: str) -> tuple[str | None, str | None]:
    """The Python of a project file's `spec` (requires-python) and runtime.txt: the
    runtime's, which the spec must allow; else the base's when allowed; else, as
    repo2docker does, the newest one pangeo-binder builds that the spec allows."""
    if not spec:
        return runtime, runtime_from
    try:
        allowed = SpecifierSet(spec)
    except InvalidSpecifier:
        raise BinderConfigError(f"{spec_from} asks for Python {spec!r}, which is not a "
                                "version specifier") from None
    if runtime:
        if not allowed.contains(runtime, prereleases=True):
            raise BinderConfigError(f"{runtime_from} asks for python-{runtime} but "
                                    f"{spec_from} asks for Python {spec}; make them agree")
        return runtime, runtime_from
    if allowed.contains(base_python):
        return None, None
    for version in reversed(PYTHON_VERSIONS):
        if allowed.contains(version):
            return version, spec_from
    raise BinderConfigError(f"{spec_from} asks for Python {spec}; pangeo-binder builds "
                            f"Python {PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}")


def _ignore_patterns(checkout: Checkout, paths: list[str]) -> tuple[str, ...]:
    """The patterns of .dockerignore / .containerignore files (comments and blank lines
    dropped), as repo2docker reads them when it copies the repository."""
    patterns = []
    for path in paths:
        for line in read_text(checkout, path).splitlines():
            if (line := line.strip()) and not line.startswith("#"):
                patterns.append(line)
    return tuple(patterns)


@dataclass(frozen=True)
class BinderFiles:
    """A checkout's binder files: where they are (`binder_dir`), each looked up safely
    (`found`), and what every kind reads the same way. Which of the environment files
    decides the image is the kinds' (pangeo_binder.builder.kinds)."""

    checkout: Checkout
    binder_dir: str
    ignore_patterns: tuple[str, ...]
    # The root's setup.py / pyproject.toml when they declare a package that repo2docker
    # would install: only without a binder directory.
    root_package: tuple[str, ...]
    files: set[str]  # every file of the checkout

    def found(self, name: str) -> str | None:
        """The path of binder file `name` if the repository has it (a regular file)."""
        path = f"{self.binder_dir}/{name}" if self.binder_dir else name
        if path not in self.files:
            return None
        _regular_file(self.checkout, path)
        return path

    def config(self, *, warnings: tuple[str, ...] | list[str] = (),
               notices: tuple[str, ...] | list[str] = (), **fields: object) -> BinderConfig:
        """The config of a kind built on pangeo-binder's images: the kind's own `fields`,
        with apt.txt, postBuild and start, which every such kind reads alike."""
        shared = []
        if self.binder_dir and declares_package(self.checkout, self.files):
            shared.append(f"the repository's own package is not installed, as "
                          f"{self.binder_dir}/ exists (repo2docker's rule); add `.` to "
                          f"{self.binder_dir}/requirements.txt if the notebooks import it")
        apt_txt = self.found("apt.txt")
        return BinderConfig(
            binder_dir=self.binder_dir,
            apt_packages=parse_apt_txt(read_text(self.checkout, apt_txt), apt_txt)
            if apt_txt else (),
            post_build=self.found("postBuild"), start=self.found("start"),
            ignore_patterns=self.ignore_patterns, warnings=(*shared, *warnings),
            notices=tuple(notices), **fields)  # type: ignore[arg-type]


def binder_files(checkout: Checkout) -> BinderFiles:
    """Where the checkout keeps its binder files, and the patterns of its ignore files."""
    files = set(checkout.files)
    present = [d for d in BINDER_DIRS if any(f.startswith(d + "/") for f in files)]
    if len(present) > 1:
        raise BinderConfigError(
            "both binder/ and .binder/ exist; keep one of them (repo2docker's rule)"
        )
    binder_dir = present[0] if present else ""
    # repo2docker reads them from the binder directory; the root's is honoured too, so
    # that a file a repository keeps out of images stays out when binder/ is added.
    ignore_files = [name for name in dict.fromkeys(
        (*(f"{binder_dir}/{n}" for n in IGNORE_FILES if binder_dir), *IGNORE_FILES))
        if name in files]
    ignore_patterns = _ignore_patterns(checkout, ignore_files)
    root_package = (tuple(name for name in ("setup.py", "pyproject.toml") if name in files)
                    if not binder_dir and declares_package(checkout, files) else ())
    return BinderFiles(checkout, binder_dir, ignore_patterns, root_package, files)
